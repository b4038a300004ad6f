"""Batches for training and encoding, as global `jax.Array`s sharded over the mesh's data axis.

The training order is a grain `MapDataset` of indices (shuffled per epoch from the seed), so the
batch at step s is `order[s]`: a resumed run sees exactly the batches it would have seen, and no
iterator state needs checkpointing. Each process gathers only its own slice of every global batch
and `jax.make_array_from_process_local_data` assembles the global array.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
import dataclasses

import grain
import jax
import numpy as np

from hashjax.data import lazy_images


class TrainBatches:
  """Random-access training batches: `batches[step]` -> dict of host numpy arrays (this process's slice)."""

  def __init__(
    self,
    images: np.ndarray,
    labels: np.ndarray,
    indices: np.ndarray,
    global_batch_size: int,
    seed: int,
    extras: Callable[[np.ndarray], dict[str, np.ndarray]] | None = None,
    skip_unreadable: bool = False,
  ):
    if global_batch_size % jax.process_count():
      raise ValueError(f'batch_size {global_batch_size} must be divisible by the process count {jax.process_count()}')
    if len(indices) < global_batch_size:
      raise ValueError(f'batch_size {global_batch_size} is larger than the training set ({len(indices)} images)')
    self.images, self.labels, self.indices = images, labels, np.asarray(indices)
    self.global_batch_size = global_batch_size
    self.order = (
      grain.MapDataset.range(len(indices)).seed(seed).shuffle().repeat().batch(global_batch_size, drop_remainder=True)
    )
    self.steps_per_epoch = len(indices) // global_batch_size
    # Hook for methods whose batches carry host-side data: extras(pool positions of the global
    # batch) -> {key: array with one row per example} (CIMON graph=global: its graph's blocks).
    self.extras = extras
    self.skip_unreadable = skip_unreadable

  def global_indices(self, step: int) -> np.ndarray:
    """Pool indices of the whole global batch at `step` (identical on every process)."""
    return self.indices[np.asarray(self.order[step])]

  def reader(self) -> BatchReader:
    """step -> this process's images and labels, as a picklable object for decoding processes."""
    return BatchReader(
      self.images, self.labels, self.indices, self.order, jax.process_index(), jax.process_count(), self.skip_unreadable
    )

  def extras_of(self, step: int) -> dict[str, np.ndarray]:
    """This process's rows of the method's extras for the batch at `step` ({} without extras)."""
    if self.extras is None:
      return {}
    rows = _local_rows(self.global_batch_size, jax.process_index(), jax.process_count())
    return {k: v[rows] for k, v in self.extras(np.asarray(self.order[step])).items()}

  def __getitem__(self, step: int) -> dict[str, np.ndarray]:
    """The batch read in this thread (streaming.Feed reads images on disk in worker processes)."""
    batch = self.reader()(step)
    del batch['skipped']
    return {**batch, **self.extras_of(step)}


def _local_rows(global_batch_size: int, process_index: int, process_count: int) -> slice:
  local = global_batch_size // process_count
  return slice(process_index * local, (process_index + 1) * local)


@dataclasses.dataclass(frozen=True)
class BatchReader:
  """step -> {'image', 'label', 'skipped'}: this process's rows of the global batch at `step`, its
  images read (decoded, for images on disk). Holds no JAX state, so grain's worker processes can
  run it (the process index and count are fixed when it is made).

  `skip_unreadable`: an image that cannot be read is replaced by the batch's previous readable image
  (the first by the next) and counted in 'skipped', instead of stopping the run with its file named.
  """

  images: np.ndarray | lazy_images.LazyImages
  labels: np.ndarray
  indices: np.ndarray
  order: grain.MapDataset
  process_index: int
  process_count: int
  skip_unreadable: bool = False

  def __call__(self, step) -> dict[str, np.ndarray]:
    batch_ids = self.indices[np.asarray(self.order[int(step)])]
    ids = batch_ids[_local_rows(len(batch_ids), self.process_index, self.process_count)]
    images, skipped = self._read(ids)
    return {'image': images, 'label': self.labels[ids], 'skipped': np.int32(skipped)}

  def _read(self, ids: np.ndarray) -> tuple[np.ndarray, int]:
    if not (self.skip_unreadable and isinstance(self.images, lazy_images.LazyImages)):
      return self.images[ids], 0
    out, bad = np.zeros((len(ids), *self.images.shape[1:]), np.uint8), []
    for n, i in enumerate(ids):
      try:
        out[n] = self.images.read_one(i)
      except ValueError:
        bad.append(n)
    good = [n for n in range(len(ids)) if n not in set(bad)]
    if not good:
      raise ValueError(f'no image of a batch of {len(ids)} could be read (dataset.skip_unreadable=True)')
    for n in bad:
      out[n] = out[max([g for g in good if g < n], default=min(good))]
    return out, len(bad)


def to_global(batch: dict[str, np.ndarray], sharding: jax.sharding.Sharding) -> dict[str, jax.Array]:
  """Host batch (this process's rows) -> global arrays sharded along the batch dimension."""
  return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()}


def eval_batches(
  images: np.ndarray, indices: np.ndarray, batch_size: int, workers: int = 0
) -> Iterator[tuple[np.ndarray, int]]:
  """Fixed-size batches over `indices` in order, the last one padded by repetition.

  Yields (this process's image slice, number of valid rows in the global batch). Fixed shapes
  keep one compiled encoder; the caller drops the padded rows. Images decoded from disk are read by
  `workers` grain processes (streaming.worker_count) ahead of the caller.
  """
  n = len(indices)
  reader = EvalReader(images, np.asarray(indices), batch_size, jax.process_index(), jax.process_count())
  if workers > 0 and isinstance(images, lazy_images.LazyImages):
    from hashjax.data import streaming  # pylint: disable=g-import-not-at-top  (streaming imports this module)

    yield from streaming.grain_iterator(grain.MapDataset.range(-(-n // batch_size)).map(reader), workers, buffer=2)
    return
  for b in range(-(-n // batch_size)):
    yield reader(b)


@dataclasses.dataclass(frozen=True)
class EvalReader:
  """b -> (this process's images of evaluation batch b, valid rows); picklable for grain's workers."""

  images: np.ndarray | lazy_images.LazyImages
  indices: np.ndarray
  batch_size: int
  process_index: int
  process_count: int

  def __call__(self, b) -> tuple[np.ndarray, int]:
    idx = self.indices[int(b) * self.batch_size : (int(b) + 1) * self.batch_size]
    valid = len(idx)
    if valid < self.batch_size:
      idx = np.concatenate([idx, np.full(self.batch_size - valid, idx[-1])])
    idx = idx[_local_rows(self.batch_size, self.process_index, self.process_count)]
    return self.images[idx], valid
