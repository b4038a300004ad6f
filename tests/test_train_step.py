"""The jitted train step gives the same loss and parameters on 8 simulated devices as on 1."""

import jax
import numpy as np

from hashjax.train import trainer
from tests import helpers

# f32 reductions are split differently across 8 shards, so sums differ in the last bits.
RTOL, ATOL = 2e-5, 1e-6


def run_steps(num_devices, steps=3):
  run = trainer.build(helpers.tiny_dsh_config(num_devices=num_devices, augment='crop_flip'))
  state, losses = run.state, []
  for step in range(steps):
    batch = trainer.pipeline.to_global(run.batches[step], run.data_sharding)
    state, metrics = run.step_fn(state, batch)
    losses.append(float(metrics['loss']))
  return run, state, np.array(losses)


def test_eight_devices_match_one():
  helpers.require_eight_devices()
  run1, state1, loss1 = run_steps(1)
  run8, state8, loss8 = run_steps(8)
  assert run8.mesh.size == 8 and run1.mesh.size == 1
  # The batch really is split across the 8 devices.
  batch = trainer.pipeline.to_global(run8.batches[0], run8.data_sharding)
  assert len(batch['image'].sharding.device_set) == 8
  np.testing.assert_allclose(loss8, loss1, rtol=RTOL, atol=ATOL)
  jax.tree.map(
    lambda a, b: np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5),
    state8.params,
    state1.params,
  )
  assert int(state8.step) == int(state1.step) == 3


def test_loss_decreases():
  _, _, losses = run_steps(1, steps=12)
  assert losses[-3:].mean() < losses[:3].mean()
