"""Images read record by record when indexed, for per-process input.

With several processes, each one only indexes its rows of every global batch (pipeline.TrainBatches)
and its slice of every evaluation batch (pipeline.eval_batches), so with a random-access record
source (tfds.data_source's array_record files, as grain reads them) each process decodes only its
share of every split instead of holding the whole dataset. Indexing with an int array returns a
NumPy array; `subset` keeps a lazy view. Whole-array consumers (normalisation statistics over the
training set, shallow baselines on pixels, CIMON's PCA graph features) read every image they cover,
as they must.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from hashjax.data import feature_rows


class LazyImages:
  """A uint8 (N, H, W, C) array-like over `read(i) -> (H, W, C)` for the rows `rows` of a source."""

  def __init__(self, read: Callable[[int], np.ndarray], rows: np.ndarray, image_shape: tuple[int, ...]):
    self._read, self._rows = read, np.asarray(rows, np.int64)
    self.shape = (len(self._rows), *image_shape)
    self.dtype, self.ndim = np.dtype(np.uint8), 1 + len(image_shape)

  @classmethod
  def from_records(cls, records: Sequence, key: str = 'image') -> LazyImages:
    """Over a random-access sequence of dicts (a tfds data source); grey images get a channel axis."""

    def read(i):
      image = np.asarray(records[int(i)][key], np.uint8)
      return image if image.ndim == 3 else image[..., None]

    return cls(read, np.arange(len(records)), read(0).shape)

  @classmethod
  def concatenate(cls, parts: Sequence[LazyImages]) -> LazyImages:
    shapes = {p.shape[1:] for p in parts}
    if len(shapes) != 1:
      raise ValueError(f'cannot concatenate images of different shapes {sorted(shapes)}')
    bounds = np.cumsum([0] + [len(p) for p in parts])

    def read(i):
      part = int(np.searchsorted(bounds, i, side='right')) - 1
      return parts[part].read_one(i - bounds[part])

    return cls(read, np.arange(bounds[-1]), parts[0].shape[1:])

  def __len__(self) -> int:
    return self.shape[0]

  def read_one(self, i) -> np.ndarray:
    return self._read(self._rows[i])

  def subset(self, indices) -> LazyImages:
    """A lazy view of the given rows (nothing read)."""
    return LazyImages(self._read, self._rows[np.asarray(indices)], self.shape[1:])

  def __getitem__(self, index) -> np.ndarray:
    if isinstance(index, (int, np.integer)):
      return self.read_one(index)
    rows = np.arange(len(self))[index]  # slices, int arrays of any shape and boolean masks, as NumPy
    out = np.empty((rows.size, *self.shape[1:]), np.uint8)
    for n, i in enumerate(rows.ravel()):
      out[n] = self.read_one(i)
    return out.reshape(*rows.shape, *self.shape[1:])

  def __array__(self, dtype=None, copy=None):
    del copy  # always a new array
    out = self[:]
    return out if dtype is None else out.astype(dtype)

  def reshape(self, *shape):
    return np.asarray(self).reshape(*shape)


def concatenate(parts: Sequence) -> np.ndarray | LazyImages | feature_rows.FeatureRows:
  """np.concatenate, lazily if any part is lazy (a view, for memory-mapped feature vectors)."""
  if any(isinstance(p, feature_rows.FeatureRows) for p in parts):
    return feature_rows.FeatureRows.concatenate(parts)
  if any(isinstance(p, LazyImages) for p in parts):
    return LazyImages.concatenate([p if isinstance(p, LazyImages) else _wrap(p) for p in parts])
  return np.concatenate(parts)


def take(images, indices):
  """images[indices], a lazy view for LazyImages and FeatureRows."""
  return images.subset(indices) if isinstance(images, (LazyImages, feature_rows.FeatureRows)) else images[indices]


def _wrap(array: np.ndarray) -> LazyImages:
  return LazyImages(lambda i: array[i], np.arange(len(array)), array.shape[1:])
