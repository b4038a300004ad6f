"""Sweeps resume after a kill without rerunning finished cells; the report covers every cell."""

import csv
import os
import shutil
import signal
import subprocess
import sys
import time

from hashjax import report
from hashjax import sweep
from hashjax.sweeps import grid as sweep_grid
from hashjax.sweeps import report as sweep_report
from tests import helpers

SETTINGS = [
  '--seeds',
  '0',
  '--set',
  'num_steps=6',
  '--set',
  'model.width=0.25',
  '--set',
  'batch_size=32',
  '--set',
  'checkpoint.every_steps=2',
  '--set',
  'eval.topk=(50,)',
  '--set',
  'eval.pn=(10,)',
]
ARGS = ['--config', 'configs/itq.py:quick', '--config', 'configs/dsh.py:quick', '--bits', '8', *SETTINGS]


def _sweep(workdir, args=ARGS, **env):
  return subprocess.run(
    [sys.executable, '-m', 'hashjax.sweep', *args, '--workdir', workdir],
    cwd=helpers.ROOT,
    env=dict(os.environ, PYTHONPATH=helpers.ROOT, JAX_PLATFORMS='cpu', **env),
    capture_output=True,
    text=True,
    timeout=600,
  )


def test_killed_sweep_resumes_and_report_has_every_cell(tmp_path, capsys):
  root = str(tmp_path / 'sweep')
  killed = _sweep(root, HASHJAX_FAULT_SIGNAL_AT_STEP='5:SIGKILL')  # dies inside the DSH cell, step 2 saved
  assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
  itq_done = os.path.join(root, 'itq_quick', '8b_seed0', 'final_metrics.json')
  assert os.path.exists(itq_done)
  assert not os.path.exists(os.path.join(root, 'dsh_quick', '8b_seed0', 'final_metrics.json'))
  finished_at = os.path.getmtime(itq_done)

  resumed = _sweep(root)
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  assert 'itq_quick 8 bits seed 0: done, skipped' in resumed.stdout
  assert 'resumed from' in resumed.stdout
  assert os.path.getmtime(itq_done) == finished_at

  # Another setting into the same folders stops before any cell runs, naming what differs.
  longer = [a.replace('num_steps=6', 'num_steps=9') for a in ARGS]
  assert sweep.main([*longer, '--workdir', root]) == 2
  assert 'num_steps: 6 -> 9' in capsys.readouterr().err
  assert os.path.getmtime(itq_done) == finished_at

  result = sweep_report.write_report(root)
  assert result['cells'] == 2
  with open(result['report']) as f:
    text = f.read()
  for name in ('itq_quick', 'dsh_quick'):
    assert f'| {name} | ' in text
  assert '## mAP' in text and '8 bits' in text and 'ties: stable' in text
  with open(result['csv']) as f:
    assert len(f.read().strip().splitlines()) == 3  # header + 2 cells
  assert len(result['figures']) >= 6
  for path in result['figures']:
    assert os.path.getsize(path) > 1000, path


def test_sigterm_stops_the_whole_sweep_and_it_resumes(tmp_path):
  root = str(tmp_path / 'sweep')
  dsh_first = ['--config', 'configs/dsh.py:quick', '--config', 'configs/itq.py:quick', '--bits', '8', *SETTINGS]
  stopped = _sweep(root, dsh_first, HASHJAX_FAULT_SIGNAL_AT_STEP='3:SIGTERM')
  assert stopped.returncode == 0, stopped.stderr[-2000:]
  assert 'sweep stopped by SIGTERM in dsh_quick 8 bits seed 0' in stopped.stdout
  assert 'sweep finished' not in stopped.stdout
  assert os.path.isdir(os.path.join(root, 'dsh_quick', '8b_seed0', 'checkpoints', '3'))
  assert not os.path.exists(os.path.join(root, 'itq_quick'))  # the next cell never started

  resumed = _sweep(root, dsh_first)
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  assert 'step 3)' in resumed.stdout and 'sweep finished' in resumed.stdout
  for name in ('dsh_quick', 'itq_quick'):
    assert os.path.exists(os.path.join(root, name, '8b_seed0', 'final_metrics.json'))


def test_local_launcher_passes_sigterm_to_every_job_and_waits_for_their_checkpoints(tmp_path):
  root = str(tmp_path / 'sweep')
  endless = [a.replace('num_steps=6', 'num_steps=100000') for a in SETTINGS] + ['--set', 'log_every_steps=1']
  launcher = subprocess.Popen(
    [
      'bash',
      'launch/sweep_local.sh',
      '2',
      '--config',
      'configs/dsh.py:quick',
      *endless,
      '--bits',
      '8,16',
      '--workdir',
      root,
    ],
    cwd=helpers.ROOT,
    env=dict(os.environ, PYTHONPATH=helpers.ROOT, JAX_PLATFORMS='cpu', PYTHON=sys.executable),
    stdout=subprocess.PIPE,
    stderr=subprocess.STDOUT,
    text=True,
  )
  logs = [os.path.join(root, f'sweep_job{i}.log') for i in range(2)]
  metrics = [os.path.join(root, 'dsh_quick', f'{bits}b_seed0', 'metrics.jsonl') for bits in (8, 16)]
  deadline = time.time() + 600
  while not all(os.path.exists(p) and open(p).read().count('"train"') >= 2 for p in metrics):  # both train
    assert time.time() < deadline and launcher.poll() is None, [open(p).read()[-2000:] for p in logs]
    time.sleep(0.5)
  launcher.send_signal(signal.SIGTERM)
  assert launcher.wait(timeout=300) == 0, launcher.stdout.read()[-2000:]
  for bits, log in zip((8, 16), logs):
    with open(log) as f:
      assert f'sweep stopped by SIGTERM in dsh_quick {bits} bits seed 0' in f.read()
    saved = os.listdir(os.path.join(root, 'dsh_quick', f'{bits}b_seed0', 'checkpoints'))
    assert any(n.isdigit() and int(n) >= 2 for n in saved), saved


def test_bad_override_and_names_fail_before_running(tmp_path):
  assert (
    sweep.main(
      ['--config', 'configs/itq.py:quick', '--bits', '8', '--workdir', str(tmp_path), '--set', 'optimizer.lrr=1']
    )
    == 2
  )
  assert not os.listdir(tmp_path)
  assert sweep_grid.config_name('configs/dsh.py:quick,bits=12') == 'dsh_quick_bits-12'


def test_local_launcher_splits_the_cells_over_jobs(tmp_path):
  """launch/sweep_local.sh N: N sweep processes, job i runs cells i, i+N, ...; every cell is done once."""
  root = str(tmp_path / 'sweep')
  out = subprocess.run(
    [
      'bash',
      'launch/sweep_local.sh',
      '2',
      '--config',
      'configs/lsh.py:quick',
      '--config',
      'configs/pcah.py:quick',
      '--bits',
      '8,16',
      '--workdir',
      root,
    ],
    cwd=helpers.ROOT,
    env=dict(os.environ, PYTHONPATH=helpers.ROOT, JAX_PLATFORMS='cpu', PYTHON=sys.executable),
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert out.returncode == 0, out.stderr[-2000:]
  for name in ('lsh_quick', 'pcah_quick'):
    for bits in (8, 16):
      assert os.path.exists(os.path.join(root, name, f'{bits}b_seed0', 'final_metrics.json'))
  logs = [open(os.path.join(root, f'sweep_job{i}.log')).read() for i in range(2)]
  ran = [line for log in logs for line in log.splitlines() if '->' in line]
  assert len(ran) == 4 and all('sweep finished' in log for log in logs)
  tables = str(tmp_path / 'tables')
  assert report.main([root, '--out', tables, '--no-figures']) == 0
  assert sorted(os.listdir(tables)) == ['report.csv', 'report.md']  # the tables alone
  assert sweep_report.write_report(root)['cells'] == 4

  # A later machine without some run folders: the earlier report.csv fills those cells in.
  shutil.rmtree(os.path.join(root, 'pcah_quick', '16b_seed0'))
  merged = str(tmp_path / 'merged')
  assert report.main([root, '--out', merged, '--no-figures', '--previous', os.path.join(tables, 'report.csv')]) == 0
  with open(os.path.join(tables, 'report.csv')) as f:
    before = {(r['name'], r['bits']): r for r in csv.DictReader(f)}
  with open(os.path.join(merged, 'report.csv')) as f:
    after = {(r['name'], r['bits']): r for r in csv.DictReader(f)}
  assert after == before  # every cell, the gone one included, with the same numbers
  with open(os.path.join(merged, 'report.md')) as f:
    assert '1 runs from an earlier report' in f.read()
  # With no run folders at all, the figures are the metric-against-bits plots alone.
  result = sweep_report.write_report(
    str(tmp_path / 'gone'), str(tmp_path / 'figs'), previous=(os.path.join(tables, 'report.csv'),)
  )
  assert result['cells'] == 4 and result['figures']
  assert all(os.path.basename(p).endswith('_vs_bits.png') for p in result['figures'])
  with open(os.path.join(tmp_path, 'old.csv'), 'w') as f:
    f.write('name,bits,seed,mAP,workdir\npcah_quick,16,0,0.5,x\n')
  assert report.main([root, '--out', merged, '--previous', os.path.join(tmp_path, 'old.csv')]) == 2
