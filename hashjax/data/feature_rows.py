"""Feature vectors read from memory-mapped files when indexed: the pool of the `features` dataset.

A `FeatureRows` is a float (N, D) array-like over one or more parts (each a NumPy array or an
`np.memmap` of a `.npy` file or of an uncompressed `.npz` member: formats/features.py). Indexing
with an int array, a slice or a mask gathers only those rows, part by part, as a new in-memory
array of the stored dtype (float16, bfloat16, float32 or float64); `subset` and `concatenate` make
views without reading anything. So the pool of every protocol (the splits concatenated) costs no
copy: 1M x 1024 float16 embeddings stay on disk (and in the page cache) once, and a training batch
reads its 200 rows. Whole-array consumers (the shallow baselines' fit, CIMON's PCA graph features)
gather what they cover, as they must.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class FeatureRows:
  """A float (N, D) array-like over the rows `rows` of the concatenation of `parts`."""

  def __init__(self, parts: Sequence[np.ndarray], rows: np.ndarray | None = None):
    parts = list(parts)
    widths = {p.shape[1] for p in parts}
    dtypes = {np.dtype(p.dtype) for p in parts}
    if any(p.ndim != 2 for p in parts) or len(widths) != 1:
      raise ValueError(f'feature parts must be 2-D of one width, got shapes {[p.shape for p in parts]}')
    if len(dtypes) != 1:
      raise ValueError(f'feature parts must share one dtype, got {sorted(map(str, dtypes))}')
    self._parts = parts
    self._bounds = np.cumsum([0] + [len(p) for p in parts])
    self._rows = np.arange(self._bounds[-1]) if rows is None else np.asarray(rows, np.int64)
    self.shape = (len(self._rows), parts[0].shape[1])
    self.dtype, self.ndim = dtypes.pop(), 2

  @classmethod
  def concatenate(cls, parts: Sequence) -> FeatureRows:
    """The rows of `parts` (FeatureRows or arrays) one after the other, nothing read."""
    arrays, rows, start = [], [], 0
    for part in parts:
      if isinstance(part, FeatureRows):
        arrays.extend(part._parts)
        rows.append(part._rows + start)
        start += part._bounds[-1]
      else:
        arrays.append(part)
        rows.append(np.arange(len(part)) + start)
        start += len(part)
    return cls(arrays, np.concatenate(rows))

  def __len__(self) -> int:
    return self.shape[0]

  def subset(self, indices) -> FeatureRows:
    """A view of the given rows (nothing read)."""
    return FeatureRows(self._parts, self._rows[np.asarray(indices)])

  def __getitem__(self, index) -> np.ndarray:
    if isinstance(index, (int, np.integer)):
      return self[np.asarray([index])][0]
    rows = self._rows[index]  # slices, int arrays of any shape and boolean masks, as NumPy
    flat = rows.ravel()
    out = np.empty((flat.size, self.shape[1]), self.dtype)
    part = np.searchsorted(self._bounds, flat, side='right') - 1
    for p in np.unique(part):
      mine = part == p
      local = flat[mine] - self._bounds[p]
      # Sorted reads from the memory map (pages in order), scattered back into place.
      order = np.argsort(local, kind='stable')
      block = np.asarray(self._parts[p][local[order]])
      out[np.flatnonzero(mine)[order]] = block
    return out.reshape(*rows.shape, self.shape[1])

  def __array__(self, dtype=None, copy=None):
    del copy  # always a new array
    out = self[:]
    return out if dtype is None else out.astype(dtype)


def is_features(array) -> bool:
  """Whether a pool (or a split's `images`) holds (N, D) feature vectors rather than (N, H, W, C) images."""
  return array.ndim == 2
