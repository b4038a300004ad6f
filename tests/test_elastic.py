"""Scale-out: a checkpoint written on 8 devices resumes on 2 (and the reverse), and a run split over
2 processes x 2 devices matches 1 process x 4 devices."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from hashjax.train import trainer
from hashjax.workdir import checkpoint
from tests import helpers

# Different meshes split the f32 batch reductions differently: equal up to summation order.
RTOL, ATOL = 1e-4, 1e-5


def _params(workdir, config):
  return checkpoint.load_params(workdir, trainer.build(config).state.params)


def _assert_close(a, b):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=RTOL, atol=ATOL), a, b)


@pytest.mark.parametrize('first,second', [(8, 2), (2, 8)])
def test_checkpoint_moves_between_mesh_sizes(tmp_path, first, second):
  sgd = {'optimizer.name': 'sgd', 'optimizer.lr': 0.01, 'num_steps': 8}
  straight = str(tmp_path / 'straight')
  trainer.train_and_evaluate(helpers.tiny_dsh_config(num_devices=first, **sgd), straight)

  moved = str(tmp_path / 'moved')
  trainer.train_and_evaluate(helpers.tiny_dsh_config(num_devices=first, **{**sgd, 'num_steps': 4}), moved)
  final = trainer.train_and_evaluate(helpers.tiny_dsh_config(num_devices=second, **sgd), moved)
  assert final['step'] == 8
  (p1, s1), (p2, s2) = _params(straight, helpers.tiny_dsh_config(**sgd)), _params(moved, helpers.tiny_dsh_config(**sgd))
  assert s1 == s2 == 8
  _assert_close(p2, p1)


def _losses(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    rows = [json.loads(line) for line in f]
  return np.array([r['loss'] for r in rows if r['split'] == 'train'])


def test_two_processes_match_one(tmp_path):
  args = [
    '--config',
    'configs/dsh.py:quick',
    '--config.num_steps=6',
    '--config.log_every_steps=1',
    '--config.batch_size=32',
    '--config.model.width=0.25',
    '--config.optimizer.name=sgd',
    '--config.optimizer.lr=0.01',
    '--config.checkpoint.every_steps=6',
    '--config.eval.topk=(50,)',
    '--config.eval.pn=(10,)',
  ]
  env = dict(os.environ, PYTHONPATH=helpers.ROOT, JAX_PLATFORMS='cpu', JAX_NUM_CPU_DEVICES='2', PYTHON=sys.executable)
  multi, single = str(tmp_path / 'multi'), str(tmp_path / 'single')
  subprocess.run(
    ['bash', 'launch/local_multiprocess.sh', '2', *args, '--workdir', multi],
    cwd=helpers.ROOT,
    env=env,
    check=True,
    capture_output=True,
    timeout=600,
  )
  subprocess.run(
    [sys.executable, '-m', 'hashjax.main', *args, '--workdir', single],
    cwd=helpers.ROOT,
    env=dict(env, JAX_NUM_CPU_DEVICES='4'),
    check=True,
    capture_output=True,
    timeout=600,
  )
  with open(os.path.join(multi, 'protocol.json')) as f:
    assert json.load(f)['train'] == 1500
  lm, ls = _losses(multi), _losses(single)
  assert len(lm) == len(ls) == 6
  np.testing.assert_allclose(lm, ls, rtol=RTOL)
  config = helpers.tiny_dsh_config()
  _assert_close(_params(multi, config)[0], _params(single, config)[0])
  with open(os.path.join(multi, 'final_metrics.json')) as f, open(os.path.join(single, 'final_metrics.json')) as g:
    m, s = json.load(f), json.load(g)
  assert m['mAP'] == pytest.approx(s['mAP'], abs=1e-3)


def test_sigterm_to_one_of_two_processes_saves_on_both_and_resumes(tmp_path):
  """Preemption of one process: both agree on the step (log_every_steps=1: every step), save it and exit 0;
  the same command then resumes and finishes with the parameters of an uninterrupted run."""
  args = [
    '--config',
    'configs/dsh.py:quick',
    '--config.num_steps=20',
    '--config.log_every_steps=1',
    '--config.batch_size=32',
    '--config.model.width=0.25',
    '--config.optimizer.name=sgd',
    '--config.optimizer.lr=0.01',
    '--config.checkpoint.every_steps=100',
    '--config.eval.topk=(50,)',
    '--config.eval.pn=(10,)',
  ]
  env = dict(os.environ, PYTHONPATH=helpers.ROOT, JAX_PLATFORMS='cpu', JAX_NUM_CPU_DEVICES='1', PYTHON=sys.executable)
  preempted, straight = str(tmp_path / 'preempted'), str(tmp_path / 'straight')
  launch = lambda workdir, **extra: subprocess.run(
    ['bash', 'launch/local_multiprocess.sh', '2', *args, '--workdir', workdir],
    cwd=helpers.ROOT,
    env=dict(env, **extra),
    capture_output=True,
    text=True,
    timeout=600,
  )
  first = launch(preempted, HASHJAX_FAULT_SIGNAL_AT_STEP='3:SIGTERM:1')  # only process 1 is told
  assert first.returncode == 0, first.stderr[-3000:]
  assert 'SIGTERM: saved checkpoint at step' in first.stdout + first.stderr
  stopped_at = max(int(n) for n in os.listdir(os.path.join(preempted, 'checkpoints')) if n.isdigit())
  assert stopped_at == 3 and not os.path.exists(os.path.join(preempted, 'final_metrics.json'))
  second = launch(preempted)
  assert second.returncode == 0, second.stderr[-3000:]
  assert launch(straight).returncode == 0
  config = helpers.tiny_dsh_config()
  (p1, s1), (p2, s2) = _params(preempted, config), _params(straight, config)
  assert s1 == s2 == 20
  _assert_close(p1, p2)
