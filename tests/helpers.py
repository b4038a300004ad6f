"""Small shared pieces for tests: loading a config file by path, as main.py does."""

import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_config(name: str, arg: str | None = None):
  spec = importlib.util.spec_from_file_location(f'config_{name}', os.path.join(ROOT, 'configs', f'{name}.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def require_eight_devices():
  """For tests of sharding over the 8 simulated CPU devices of tests/conftest.py: asserts them, or skips
  where the tests run on a real accelerator with another device count (HASHJAX_TESTS_ON_DEVICE=1)."""
  import jax  # pylint: disable=g-import-not-at-top
  import pytest  # pylint: disable=g-import-not-at-top

  n = jax.device_count()
  if n != 8 and os.environ.get('HASHJAX_TESTS_ON_DEVICE') == '1':
    pytest.skip(f'needs 8 devices; this run has {n} {jax.default_backend()} device(s)')
  assert n == 8, f'tests/conftest.py sets 8 simulated CPU devices, found {n}'


def tiny_dsh_config(**overrides):
  """DSH on digits, small and short: the shared fixture for trainer tests."""
  c = load_config('dsh', 'quick')
  c.num_steps = 12
  c.batch_size = 32
  c.log_every_steps = 4
  c.checkpoint.every_steps = 4
  c.model.width = 0.25
  c.eval.topk = (50,)
  c.eval.pn = (10,)
  c.eval.batch_size = 256
  for k, v in overrides.items():
    node = c
    *path, last = k.split('.')
    for p in path:
      node = node[p]
    node[last] = v
  return c


def first_steps(config, num_devices: int, steps: int = 3):
  """(state, losses) after `steps` train steps of `config` on `num_devices` devices: for the
  sharded = single-device tests."""
  import numpy as np  # pylint: disable=g-import-not-at-top

  from hashjax.train import trainer  # pylint: disable=g-import-not-at-top  (tests that only load configs stay light)

  config.num_devices = num_devices
  run = trainer.build(config)
  state, losses = run.state, []
  for step in range(steps):
    state, metrics = run.step_fn(state, trainer.pipeline.to_global(run.batches[step], run.data_sharding))
    losses.append(float(metrics['loss']))
  return state, np.array(losses)
