"""python -m hashjax.evaluate: JSON output and exit code 2 on bad input."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from hashjax import evaluate
from hashjax.retrieval.codes import pack_codes
from hashjax.retrieval.metrics import retrieval_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def files(tmp_path):
  rng = np.random.default_rng(0)
  arrays = {
    'q': rng.standard_normal((30, 40)).astype(np.float32),
    'd': np.sign(rng.standard_normal((200, 40))).astype(np.int8),
    'ql': rng.integers(0, 4, 30),
    'dl': rng.integers(0, 4, 200),
  }
  arrays['qp'], arrays['dp'] = pack_codes(arrays['q']), pack_codes(arrays['d'])
  arrays['d01'] = (arrays['d'] > 0).astype(np.uint8)
  arrays['d01i'] = (arrays['d'] > 0).astype(np.int64)  # {0,1} in a signed int
  paths = {}
  for name, a in arrays.items():
    paths[name] = str(tmp_path / f'{name}.npy')
    np.save(paths[name], a)
  return arrays, paths


def _args(p, q='q', d='d', ql='ql', dl='dl'):
  return ['--query_codes', p[q], '--query_labels', p[ql], '--db_codes', p[d], '--db_labels', p[dl]]


def test_cli_json_matches_library(files, capsys):
  a, p = files
  assert evaluate.main(_args(p) + ['--topk', '50', '--pn', '10,100', '--radius', '5']) == 0
  out = json.loads(capsys.readouterr().out)
  want = retrieval_metrics(a['qp'], a['ql'], a['dp'], a['dl'], bits=40, topk=(50,), radius=5, pn=(10, 100))
  assert set(out) == {'mAP', 'mAP@50', 'P@H<=5', 'R@H<=5', 'P@N'}
  for k in ('mAP', 'mAP@50', 'P@H<=5', 'R@H<=5'):
    assert out[k] == pytest.approx(want[k], abs=1e-12)
  assert out['P@N'] == pytest.approx({'10': want['P@10'], '100': want['P@100']})
  # packed input (+ --bits) and {0,1} uint8 input give the same numbers.
  for extra, kw in ((['--bits', '40'], dict(q='qp', d='dp')), ([], dict(d='d01')), ([], dict(d='d01i'))):
    assert evaluate.main(_args(p, **kw) + ['--topk', '50', '--pn', '10,100', '--radius', '5'] + extra) == 0
    assert json.loads(capsys.readouterr().out) == out
  # The database split over the 8 simulated devices: the same metrics (AP sums to float32 rounding).
  assert evaluate.main(_args(p) + ['--topk', '50', '--pn', '10,100', '--radius', '5', '--shard_db']) == 0
  sharded = json.loads(capsys.readouterr().out)
  assert sharded.pop('P@N') == out['P@N']
  assert sharded == pytest.approx({k: v for k, v in out.items() if k != 'P@N'}, rel=1e-6)
  assert evaluate.main(_args(p) + ['--shard_db', '--ties', 'numpy']) == 2
  assert "ties='numpy'" in capsys.readouterr().err


def test_cli_bad_inputs_exit_2(files, capsys):
  _, p = files
  p = dict(p, qlnan=p['ql'] + '.nan.npy', d39=p['d'] + '.39.npy')
  np.save(p['qlnan'], np.full(30, np.nan))
  np.save(p['d39'], np.ones((200, 39)))  # 39 bits vs the queries' 40
  p['qnan'] = p['q'] + '.nan.npy'
  np.save(p['qnan'], np.full((30, 40), np.nan))
  bad = [
    (_args(p, ql='dl'), 'rows'),  # mismatched lengths
    (_args(p, q='qp', d='dp'), '--bits'),  # packed without --bits
    (_args(p, q='qp', d='dp') + ['--bits', '70'], 'words'),
    (_args(p) + ['--bits', '41'], 'bits'),
    (_args(p, d='d39'), 'bits'),
    (_args(p, ql='qlnan'), 'NaN'),
    (_args(p, d='ql'), '2-D'),
    (_args(p, q='qnan'), 'NaN'),
  ]
  for argv, msg in bad:
    assert evaluate.main(argv) == 2, argv
    assert msg in capsys.readouterr().err
  with pytest.raises(SystemExit) as e:  # argparse errors also exit 2
    evaluate.main(_args(p) + ['--pn', '10,x'])
  assert e.value.code == 2


def test_cli_subprocess(files):
  _, p = files
  env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS='cpu')
  ok = subprocess.run(
    [sys.executable, '-m', 'hashjax.evaluate', *_args(p), '--ties', 'expected', '--pn', '20', '--topk', '5'],
    capture_output=True,
    text=True,
    env=env,
    cwd=ROOT,
    check=False,
  )
  assert ok.returncode == 0, ok.stderr
  assert set(json.loads(ok.stdout)) == {'mAP', 'mAP@5', 'P@H<=2', 'R@H<=2', 'P@N'}
  bad = subprocess.run(
    [sys.executable, '-m', 'hashjax.evaluate', *_args(p, ql='dl')],
    capture_output=True,
    text=True,
    env=env,
    cwd=ROOT,
    check=False,
  )
  assert bad.returncode == 2 and 'error:' in bad.stderr and not bad.stdout


def test_workdir_evaluation_matches_the_run_and_writes_plots(tmp_path, capsys):
  from hashjax.train import trainer
  from tests import helpers

  workdir = str(tmp_path / 'run')
  final = trainer.train_and_evaluate(helpers.tiny_dsh_config(num_steps=4), workdir)
  capsys.readouterr()  # the training run's own log lines
  events = b''.join(
    open(os.path.join(workdir, 'tensorboard', n), 'rb').read() for n in os.listdir(os.path.join(workdir, 'tensorboard'))
  )
  assert b'eval/pr_curve' in events and b'eval/mAP' in events  # TensorBoard: the image and the scalars
  assert evaluate.main(['--workdir', workdir]) == 0
  out = json.loads(capsys.readouterr().out)
  assert out['step'] == 4
  assert out['mAP'] == pytest.approx(final['mAP'], rel=1e-9)
  assert out['P@N']['10'] == pytest.approx(final['P@10'], rel=1e-9)
  for name in ('pr_curve.png', 'p_at_n.png', 'codes_tsne.png', 'codes.npz', 'eval_metrics.json'):
    assert os.path.getsize(os.path.join(workdir, name)) > 0, name
  assert out['d_w/d_b'] == (pytest.approx(out['d_w'] / out['d_b']) if out['d_b'] > 0 else None)
  with np.load(os.path.join(workdir, 'codes.npz')) as f:
    again = retrieval_metrics(f['query_packed'], f['query_labels'], f['db_packed'], f['db_labels'], bits=int(f['bits']))
  # The run ranked over its 8-device mesh (AP sums added across devices), this on one device.
  assert again['mAP'] == pytest.approx(final['mAP'], rel=1e-6)
  assert evaluate.main(['--workdir', str(tmp_path / 'nowhere')]) == 2
  assert 'not a hashjax workdir' in capsys.readouterr().err


def test_class_distance_ratio_hand_made():
  from hashjax.eval import code_embedding

  codes = np.array([[1, 1, 1, 1], [1, 1, 1, -1], [-1, -1, -1, -1], [-1, -1, -1, 1]], np.float32)
  # same class: (0,1) and (2,3) at distance 1; different: (0,2) 4, (0,3) 3, (1,2) 3, (1,3) 4
  ratio = code_embedding.class_distance_ratio(codes, np.array([0, 0, 1, 1]))
  assert ratio == {'d_w': 1.0, 'd_b': 3.5, 'd_w/d_b': pytest.approx(1 / 3.5)}
  multi = code_embedding.class_distance_ratio(codes, np.array([[1, 0], [1, 1], [0, 1], [0, 1]]))
  assert multi['d_b'] == pytest.approx((4 + 3) / 2)  # only rows 0-2 and 0-3 share no label
  with pytest.raises(ValueError, match='two classes'):
    code_embedding.class_distance_ratio(codes, np.zeros(4, int))
