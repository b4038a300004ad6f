"""Batches for training and encoding, as global `jax.Array`s sharded over the mesh's data axis.

The training order is a grain `MapDataset` of indices (shuffled per epoch from the seed), so the
batch at step s is `order[s]`: a resumed run sees exactly the batches it would have seen, and no
iterator state needs checkpointing. Each process gathers only its own slice of every global batch
and `jax.make_array_from_process_local_data` assembles the global array.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grain
import jax
import numpy as np


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

  def global_indices(self, step: int) -> np.ndarray:
    """Pool indices of the whole global batch at `step` (identical on every process)."""
    return self.indices[np.asarray(self.order[step])]

  def __getitem__(self, step: int) -> dict[str, np.ndarray]:
    idx = self.global_indices(step)
    local = len(idx) // jax.process_count()
    rows = slice(jax.process_index() * local, (jax.process_index() + 1) * local)
    batch = {'image': self.images[idx[rows]], 'label': self.labels[idx[rows]]}
    if self.extras is not None:
      batch.update({k: v[rows] for k, v in self.extras(np.asarray(self.order[step])).items()})
    return batch


def to_global(batch: dict[str, np.ndarray], sharding: jax.sharding.Sharding) -> dict[str, jax.Array]:
  """Host batch (this process's rows) -> global arrays sharded along the batch dimension."""
  return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()}


def eval_batches(images: np.ndarray, indices: np.ndarray, batch_size: int) -> Iterator[tuple[np.ndarray, int]]:
  """Fixed-size batches over `indices` in order, the last one padded by repetition.

  Yields (this process's image slice, number of valid rows in the global batch). Fixed shapes
  keep one compiled encoder; the caller drops the padded rows.
  """
  n = len(indices)
  for start in range(0, n, batch_size):
    idx = indices[start : start + batch_size]
    valid = len(idx)
    if valid < batch_size:
      idx = np.concatenate([idx, np.full(batch_size - valid, idx[-1])])
    local = batch_size // jax.process_count()
    idx = idx[jax.process_index() * local : (jax.process_index() + 1) * local]
    yield images[idx], valid
