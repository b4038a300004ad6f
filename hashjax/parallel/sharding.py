"""The device mesh and the two shardings the trainer needs: batch split over `data`, rest replicated.

The mesh spans every device of every process. Axis types are Auto (classic GSPMD propagation) so
the all-pairs losses (u @ u.T over the global batch) need no hand-written collectives: XLA gathers
what it needs across devices.
"""

from __future__ import annotations

import jax
from jax.sharding import AxisType
from jax.sharding import NamedSharding

DATA_AXIS = 'data'


def make_mesh(num_devices: int | None = None) -> jax.sharding.Mesh:
  n = num_devices or jax.device_count()
  if n > jax.device_count():
    raise ValueError(f'mesh of {n} devices requested but only {jax.device_count()} are visible')
  return jax.make_mesh((n,), (DATA_AXIS,), axis_types=(AxisType.Auto,), devices=jax.devices()[:n])


def data_sharding(mesh) -> NamedSharding:
  """Leading (batch) dimension split over every device."""
  return NamedSharding(mesh, jax.P(DATA_AXIS))


def replicated(mesh) -> NamedSharding:
  return NamedSharding(mesh, jax.P())


def check_batch_size(batch_size: int, mesh) -> None:
  if batch_size % mesh.size:
    raise ValueError(
      f'batch_size {batch_size} must be divisible by the number of devices ({mesh.size}); '
      f'choose a multiple of {mesh.size}'
    )
