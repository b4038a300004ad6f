"""Selecting the k smallest small-integer distances by counting instead of sorting.

Distances live in [0, nbuckets). A histogram of a row gives the threshold distance t (the bucket
holding the k-th smallest) and how many items of bucket t are needed (`threshold`). Bit masks of
the items below t and at t (`pack_bits`) then give the selected items by rank (`nth_set_bit`):
every item below t and the first `need` at t, in position order, so the selection is the first k
of a stable sort by distance (retrieval.search).
"""

import jax
from jax import lax
import jax.numpy as jnp


def row_histograms(values, nbins: int):
  """(rows, n) int32 in [0, nbins) -> (rows, nbins) int32 counts of each value per row.

  One scatter-add over flat indices row * nbins + value: on CPU about 1.5x faster than the same
  scatter with (row, value) index pairs (benchmarks/notes/retrieval_engine.md, "Flat-index
  histograms")."""
  rows = values.shape[0]
  # Clipped: a flat index past a row's last bin would land in the next row.
  values = jnp.clip(values, 0, nbins - 1)
  flat = (lax.broadcasted_iota(jnp.int32, values.shape, 0) * nbins + values).ravel()
  counts = jnp.zeros(rows * nbins, jnp.int32).at[flat].add(1, mode='promise_in_bounds')
  return counts.reshape(rows, nbins)


def threshold(hist, k: int):
  """(t, need) per row of a (rows, nbuckets) histogram holding >= k items: the distance of the k-th
  smallest item and how many items at distance t are among the k smallest (1..hist[t])."""
  cum = jnp.cumsum(hist, axis=1)
  t = jnp.sum(cum < k, axis=1, dtype=jnp.int32)
  before = jnp.take_along_axis(cum - hist, t[:, None], axis=1)[:, 0]
  return t, k - before


def pack_bits(mask):
  """(rows, n) bool -> (rows, n / 32) uint32 words, item j of a word at bit j (n a multiple of 32)."""
  rows, n = mask.shape
  if n % 32:
    raise ValueError(f'pack_bits needs a multiple of 32 items per row, got {n}')
  shift = lax.broadcasted_iota(jnp.uint32, (1, 1, 32), 2)
  return jnp.sum(mask.reshape(rows, n // 32, 32).astype(jnp.uint32) << shift, axis=2, dtype=jnp.uint32)


def nth_set_bit(words, ranks):
  """Position of the ranks-th (0-based) set bit of each row's bit mask: (rows, n/32) uint32 words,
  (rows, m) int32 ranks, each < the row's number of set bits -> (rows, m) int32 item positions.

  A binary search over the words' running popcounts finds the word, then five halvings the bit:
  O(m log n) per row, however many items the mask covers.
  """
  count = lax.population_count(words).astype(jnp.int32)
  upto = jnp.cumsum(count, axis=1)  # set bits in words 0..w
  w = jax.vmap(lambda u, r: jnp.searchsorted(u, r, side='right', method='scan'))(upto, ranks)
  word = jnp.take_along_axis(words, w, axis=1)
  r = ranks - (jnp.take_along_axis(upto, w, axis=1) - jnp.take_along_axis(count, w, axis=1))
  pos = jnp.zeros_like(ranks)
  for width in (16, 8, 4, 2, 1):  # skip the lower half of the window when r lies beyond it
    low = lax.population_count((word >> pos.astype(jnp.uint32)) & jnp.uint32((1 << width) - 1)).astype(jnp.int32)
    beyond = r >= low
    r = jnp.where(beyond, r - low, r)
    pos = jnp.where(beyond, pos + width, pos)
  return w * 32 + pos
