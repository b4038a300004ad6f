"""A run killed with SIGKILL mid-training resumes to exactly the result of an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

from hashjax.train import trainer
from hashjax.workdir import checkpoint
from tests import helpers

STEPS = 40
KILL_AT = 25  # between the checkpoints at 20 and 30, while the one at 20 may still be being written
ARGS = [
  f'--config.num_steps={STEPS}',
  '--config.checkpoint.every_steps=10',
  '--config.model.width=0.25',
  '--config.batch_size=32',
  '--config.eval.topk=(50,)',
  '--config.eval.pn=(10,)',
  '--config.log_every_steps=10',
]


def command(workdir):
  return [sys.executable, '-m', 'hashjax.main', '--config', 'configs/dsh.py:quick', '--workdir', workdir] + ARGS


def env(**extra):
  # One device per process keeps the subprocesses cheap; the sharded path has its own test.
  return dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=helpers.ROOT, **extra)


def final_params(workdir):
  config = helpers.tiny_dsh_config(**{'model.width': 0.25, 'num_steps': STEPS})
  params, step = checkpoint.load_params(workdir, trainer.build(config).state.params)
  return params, step


def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
  straight, killed = str(tmp_path / 'straight'), str(tmp_path / 'killed')
  subprocess.run(command(straight), cwd=helpers.ROOT, env=env(), check=True, capture_output=True)

  # The run SIGKILLs itself after step KILL_AT (a real SIGKILL at a known point, so the test cannot race).
  dead = subprocess.run(
    command(killed), cwd=helpers.ROOT, env=env(HASHJAX_FAULT_SIGNAL_AT_STEP=f'{KILL_AT}:SIGKILL'), capture_output=True
  )
  assert dead.returncode == -signal.SIGKILL
  assert not os.path.exists(os.path.join(killed, 'final_metrics.json')), 'run finished before it was killed'
  steps_before = sorted(int(s) for s in os.listdir(os.path.join(killed, 'checkpoints')) if s.isdigit())
  assert steps_before and steps_before[-1] < STEPS

  resumed = subprocess.run(command(killed), cwd=helpers.ROOT, env=env(), check=True, capture_output=True, text=True)
  assert 'resumed from' in resumed.stderr + resumed.stdout

  with open(os.path.join(straight, 'final_metrics.json')) as f:
    expected = json.load(f)
  with open(os.path.join(killed, 'final_metrics.json')) as f:
    got = json.load(f)
  for key in ('mAP', 'mAP@50', 'P@10', 'P@H<=2', 'R@H<=2'):
    assert got[key] == pytest.approx(expected[key], rel=1e-6), key  # f32 vs f64 summation paths
  assert (
    got['resumed_from_step'] == steps_before[-1] and 'resumed_from_step' not in expected
  )  # wall_seconds: this process
  (p1, s1), (p2, s2) = final_params(straight), final_params(killed)
  assert s1 == s2 == STEPS
  jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), p1, p2)


def test_sigterm_saves_and_exits_cleanly_then_resumes(tmp_path):
  workdir = str(tmp_path / 'run')
  out = subprocess.run(
    command(workdir),
    cwd=helpers.ROOT,
    env=env(HASHJAX_FAULT_SIGNAL_AT_STEP='13:SIGTERM'),
    capture_output=True,
    text=True,
  )
  assert out.returncode == 0, out.stderr[-2000:]
  assert 'SIGTERM: saved checkpoint at step 13' in out.stdout + out.stderr
  assert os.path.isdir(os.path.join(workdir, 'checkpoints', '13'))
  assert not os.path.exists(os.path.join(workdir, 'final_metrics.json'))
  resumed = subprocess.run(command(workdir), cwd=helpers.ROOT, env=env(), check=True, capture_output=True, text=True)
  assert 'step 13)' in resumed.stdout + resumed.stderr
  with open(os.path.join(workdir, 'final_metrics.json')) as f:
    assert json.load(f)['step'] == STEPS


def test_init_from_reuses_another_runs_parameters(tmp_path):
  source, target = str(tmp_path / 'source'), str(tmp_path / 'target')
  trainer.train_and_evaluate(helpers.tiny_dsh_config(num_steps=4), source)
  trained, _ = checkpoint.load_params(source, trainer.build(helpers.tiny_dsh_config()).state.params)

  # Training with the network frozen from `source` evaluates exactly its parameters; a fresh init does not.
  frozen = {'optimizer.lr_multipliers': 'model/=0'}
  reused = trainer.train_and_evaluate(helpers.tiny_dsh_config(num_steps=4, init_from=source, **frozen), target)
  fresh = trainer.train_and_evaluate(helpers.tiny_dsh_config(num_steps=4, **frozen), str(tmp_path / 'fresh'))
  params, step = checkpoint.load_params(target, trained)
  assert step == 4
  jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), params, trained)
  with open(os.path.join(source, 'final_metrics.json')) as f:
    assert reused['mAP'] == pytest.approx(json.load(f)['mAP'], rel=1e-6)
  assert fresh['mAP'] != pytest.approx(reused['mAP'], rel=1e-3)
  with pytest.raises(checkpoint.CheckpointError, match='no checkpoint found'):
    trainer.train_and_evaluate(helpers.tiny_dsh_config(init_from=str(tmp_path / 'nowhere')), str(tmp_path / 'x'))


def test_parameters_from_before_the_model_method_split_still_load(tmp_path):
  """Checkpoints that stored the network's parameters alone (before params = {model, method}) load
  into the new layout (evaluate, classify and init_from use this); a checkpoint of another model fails
  with a one-line error."""
  run = trainer.build(helpers.tiny_dsh_config())
  old = run.state.replace(params=jax.tree.map(lambda a: a + 1.0, run.state.params['model']))
  saver = checkpoint.Checkpointer(str(tmp_path / 'old' / 'checkpoints'), 100, 1)
  saver.save(4, old, {})
  saver.wait()
  saver.close()
  params, step = checkpoint.load_params(str(tmp_path / 'old'), run.state.params)
  assert step == 4 and params['method'] == {}
  jax.tree.map(np.testing.assert_array_equal, params['model'], old.params)
  other = trainer.build(helpers.tiny_dsh_config(**{'model.width': 0.5}))
  with pytest.raises(checkpoint.CheckpointError, match='does not fit this model'):
    checkpoint.load_params(str(tmp_path / 'old'), other.state.params)


def test_checkpoints_with_method_state_among_the_parameters_still_evaluate(tmp_path):
  """Before method state (stop 32), DCWH's recomputed centers were params['method']: such a checkpoint
  still gives its network to evaluation and init_from, and resuming it fails with one clear line."""
  config = helpers.load_config('dcwh', 'quick')
  config.update(batch_size=32, num_steps=8)
  config.model.width = 0.25
  run = trainer.build(config)
  assert run.state.params['method'] == {} and set(run.state.method_state) == {'centers'}
  model = jax.tree.map(lambda a: a + 1.0, run.state.params['model'])
  old = run.state.replace(params={'model': model, 'method': run.state.method_state}, method_state={})
  saver = checkpoint.Checkpointer(str(tmp_path / 'checkpoints'), 100, 1)
  saver.save(4, old, {'method': 'dcwh', 'model': 'dsh_net', 'bits': 16})  # what older checkpoints recorded
  saver.wait()
  saver.close()
  params, step = checkpoint.load_params(str(tmp_path), run.state.params)
  assert step == 4 and params['method'] == {}
  jax.tree.map(np.testing.assert_array_equal, params['model'], model)
  with pytest.raises(checkpoint.CheckpointError, match='older than method state .* cannot be resumed'):
    trainer.train_and_evaluate(config, str(tmp_path))
