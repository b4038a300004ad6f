"""Host hash table from packed code -> database ids, with radius-r probing.

Lookup within radius r probes every code at Hamming distance <= r from the
query (sum_{i<=r} C(bits, i) probes: 2,081 for 64 bits, r = 2), so it pays off
for small r and large, clustered databases; ``topk_search`` or a linear scan
is better otherwise.
"""

import itertools
import math

import numpy as np

from hashjax.retrieval.codes import num_words


def _flip_masks(bits: int, radius: int) -> tuple[np.ndarray, np.ndarray]:
  """(nprobe, W) uint32 XOR masks of every bit set of size <= radius, and
  their sizes, in order of size."""
  w = num_words(bits)
  masks, sizes = [], []
  for size in range(radius + 1):
    for combo in itertools.combinations(range(bits), size):
      m = np.zeros(w, np.uint32)
      for b in combo:
        m[b // 32] |= np.uint32(1) << np.uint32(b % 32)
      masks.append(m)
      sizes.append(size)
  return np.array(masks, np.uint32).reshape(-1, w), np.array(sizes, np.int32)


class HashTable:
  """Buckets of database indices keyed by the packed code."""

  def __init__(self, db_packed, bits: int, max_probes: int = 1_000_000):
    db = np.asarray(db_packed)
    if db.dtype != np.uint32 or db.ndim != 2 or db.shape[1] != num_words(bits):
      raise ValueError(f'db_packed must be (n, {num_words(bits)}) uint32, got {db.dtype} {db.shape}')
    self.bits, self.max_probes = int(bits), max_probes
    uniq, inverse = np.unique(db, axis=0, return_inverse=True)
    order = np.argsort(inverse.ravel(), kind='stable')  # ids ascending per code
    starts = np.searchsorted(inverse.ravel()[order], np.arange(len(uniq)))
    ids = np.split(order.astype(np.int64), starts[1:])
    self.buckets = {u.tobytes(): i for u, i in zip(uniq, ids)}
    self._masks = {}

  def __len__(self) -> int:
    return len(self.buckets)

  def query(self, q_packed_row, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Database ids within Hamming ``radius`` of one packed query code.

    Returns (ids, distances) sorted by distance then id, the same order as a
    stable sort of a linear scan restricted to the ball.
    """
    nprobe = sum(math.comb(self.bits, i) for i in range(radius + 1))
    if nprobe > self.max_probes:
      raise ValueError(f'radius {radius} needs {nprobe} probes (> max_probes={self.max_probes})')
    if radius not in self._masks:
      self._masks[radius] = _flip_masks(self.bits, radius)
    masks, sizes = self._masks[radius]
    q = np.asarray(q_packed_row, np.uint32).reshape(1, -1)
    ids, dists = [], []
    for probe, size in zip(q ^ masks, sizes):
      hit = self.buckets.get(probe.tobytes())
      if hit is not None:
        ids.append(hit)
        dists.append(np.full(len(hit), size, np.int32))
    if not ids:
      return np.zeros(0, np.int64), np.zeros(0, np.int32)
    ids, dists = np.concatenate(ids), np.concatenate(dists)
    order = np.lexsort((ids, dists))
    return ids[order], dists[order]
