"""A workdir cannot be poisoned: no non-finite checkpoint, one writer, resume only into the same run,
checksummed checkpoints, one line per error (README, "What survives what")."""

import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hashjax.cli import errors
from hashjax.eval import workdir_eval
from hashjax.train import trainer
from hashjax.workdir import checkpoint
from hashjax.workdir import lock as workdir_lock
from tests import helpers

SGD = {'optimizer.name': 'sgd', 'optimizer.lr': 0.01}


def _snapshot(directory):
  """Every file under `directory` with its size and modification time: equal snapshots = untouched."""
  out = {}
  for root, _, files in os.walk(directory):
    for name in files:
      path = os.path.join(root, name)
      out[path] = (os.path.getsize(path), os.path.getmtime(path))
  return out


def _command(workdir, *flags):
  return [
    sys.executable,
    '-m',
    'hashjax.main',
    '--config',
    'configs/dsh.py:quick',
    '--workdir',
    workdir,
    '--config.num_steps=8',
    '--config.checkpoint.every_steps=4',
    '--config.model.width=0.25',
    '--config.batch_size=32',
    '--config.log_every_steps=4',
    '--config.eval.topk=(50,)',
    '--config.eval.pn=(10,)',
    *flags,
  ]


def _env(**extra):
  return dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=helpers.ROOT, **extra)


def _run(workdir, *flags, **env):
  return subprocess.run(_command(workdir, *flags), cwd=helpers.ROOT, env=_env(**env), capture_output=True, text=True)


def _one_error_line(out, *fragments):
  """The process failed with status 2 and printed exactly one line on stderr, holding the fragments."""
  assert out.returncode == 2, (out.returncode, out.stderr[-3000:])
  lines = out.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith('error: '), out.stderr[-3000:]
  for fragment in fragments:
    assert fragment in lines[0], lines[0]
  return lines[0]


# ---------------------------------------------------------------- never a non-finite checkpoint
def test_diverging_resume_saves_nothing_and_a_sane_lr_goes_on_from_the_last_finite_checkpoint(tmp_path):
  workdir = str(tmp_path)
  trainer.train_and_evaluate(helpers.tiny_dsh_config(num_steps=8, **SGD), workdir)
  blow_up = helpers.tiny_dsh_config(
    num_steps=16, **{**SGD, 'optimizer.lr': 1e30, 'checkpoint.allow_changes': 'optimizer.lr'}
  )
  with pytest.raises(errors.NonFiniteError, match='Nothing was saved after step 8, the last checkpoint'):
    trainer.train_and_evaluate(blow_up, workdir)
  assert checkpoint.steps(workdir) == [4, 8]
  # Rerun with a sane lr: it continues from step 8 (whose config had that lr) to the end.
  final = trainer.train_and_evaluate(helpers.tiny_dsh_config(num_steps=16, **SGD), workdir)
  assert final['step'] == 16 and np.isfinite(final['mAP'])
  changes = [json.loads(line)['changes'] for line in open(os.path.join(workdir, 'config_changes.jsonl'))]
  assert changes[0]['optimizer.lr'] == [0.01, 1e30] and changes[1] == {'num_steps': [8, 16]}


def test_a_state_that_turns_non_finite_after_a_finite_loss_is_never_saved(tmp_path):
  """The loss is computed before the update; the saved state is the one after it: the save itself
  checks the state."""
  workdir = str(tmp_path)
  run = trainer.build(helpers.tiny_dsh_config(num_steps=8, **SGD))
  step_fn = run.step_fn

  def poisoned_at_step_8(state, batch):
    state, metrics = step_fn(state, batch)
    if int(state.step) == 8:  # finite metrics (computed before the update), an Inf in the new parameters
      leaves, tree = jax.tree.flatten(state.params)
      state = state.replace(params=jax.tree.unflatten(tree, [leaves[0].at[0].set(jnp.inf)] + leaves[1:]))
    return state, metrics

  run.step_fn = poisoned_at_step_8
  ckpt = checkpoint.Checkpointer(os.path.join(workdir, 'checkpoints'), every_steps=4, keep=5)
  writer = trainer.metric_writer.MetricWriter(workdir, total_steps=8, batch_size=32)
  with pytest.raises(
    errors.NonFiniteError,
    match=r'step 8: params/.* holds NaN or Inf. Nothing was saved after '
    r'step 4',
  ):
    trainer._train(run, run.state, ckpt, writer, last_ckpt=None)
  ckpt.close()
  writer.close()
  assert checkpoint.steps(workdir) == [4]


def test_checkpointer_refuses_non_finite_optimizer_state(tmp_path):
  run = trainer.build(helpers.tiny_dsh_config(**{'optimizer.name': 'adam'}))
  bad = run.state.replace(
    opt_state=jax.tree.map(lambda x: x * jnp.nan if jnp.issubdtype(x.dtype, jnp.floating) else x, run.state.opt_state)
  )
  ckpt = checkpoint.Checkpointer(str(tmp_path), every_steps=1, keep=1)
  with pytest.raises(checkpoint.NonFiniteStateError, match='train/opt_state/'):
    ckpt.save(1, bad, {})
  ckpt.close()
  assert checkpoint.steps(str(tmp_path)) == []


# ---------------------------------------------------------------- one writer
def test_a_second_run_is_refused_while_the_first_holds_the_workdir(tmp_path):
  workdir = str(tmp_path / 'run')
  with workdir_lock.WorkdirLock(workdir):
    with pytest.raises(errors.WorkdirInUseError, match=f'pid {os.getpid()} on host'):
      trainer.train_and_evaluate(helpers.tiny_dsh_config(num_steps=4), workdir)
    assert os.listdir(workdir) == ['lock.json']  # the refused run wrote nothing
  assert not os.path.exists(os.path.join(workdir, 'lock.json'))  # released at exit


def test_two_processes_one_workdir(tmp_path):
  """The issue's case: the first run stops itself (SIGSTOP) mid-training holding the lock; a second
  run of the same command is refused with one line and changes nothing; the first then finishes."""
  workdir = str(tmp_path / 'run')
  first = subprocess.Popen(
    _command(workdir),
    cwd=helpers.ROOT,
    env=_env(HASHJAX_FAULT_SIGNAL_AT_STEP='5:SIGSTOP'),
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
  )
  try:
    deadline = time.time() + 120
    while _proc_state(first.pid) != 'T':
      assert time.time() < deadline and first.poll() is None, 'the first run never reached step 5'
      time.sleep(0.2)
    before = _snapshot(workdir)
    second = _run(workdir)
    _one_error_line(second, 'is in use by another run', f'pid {first.pid}', 'python -m hashjax.main')
    assert _snapshot(workdir) == before
  finally:
    os.kill(first.pid, signal.SIGCONT)
  out, err = first.communicate(timeout=120)
  assert first.returncode == 0, err[-2000:]
  assert json.load(open(os.path.join(workdir, 'final_metrics.json')))['step'] == 8


def _proc_state(pid):
  with open(f'/proc/{pid}/stat') as f:
    return f.read().rsplit(')', 1)[1].split()[0]


def test_lock_of_a_dead_run_is_taken_over_and_another_hosts_needs_force(tmp_path, capsys):
  workdir = str(tmp_path)
  lock_path = os.path.join(workdir, workdir_lock.LOCK_FILE)
  dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'], capture_output=True, text=True)
  with open(lock_path, 'w') as f:  # what a SIGKILLed run leaves: its file, no flock
    json.dump({'host': workdir_lock.socket.gethostname(), 'pid': int(dead.stdout), 'since': 'x', 'command': 'c'}, f)
  trainer.train_and_evaluate(helpers.tiny_dsh_config(num_steps=4), workdir)
  assert f'took over the lock of pid {int(dead.stdout)}' in capsys.readouterr().out
  assert not os.path.exists(lock_path)

  with open(lock_path, 'w') as f:
    json.dump({'host': 'elsewhere', 'pid': 1, 'since': 'x', 'command': 'c'}, f)
  with pytest.raises(errors.WorkdirInUseError, match='host elsewhere.*rerun with --force_unlock'):
    trainer.train_and_evaluate(helpers.tiny_dsh_config(num_steps=8), workdir)
  assert checkpoint.steps(workdir) == [4]
  final = trainer.train_and_evaluate(helpers.tiny_dsh_config(num_steps=8), workdir, force_unlock=True)
  assert final['step'] == 8 and 'forced' in capsys.readouterr().out


# ---------------------------------------------------------------- resume only into the same run
@pytest.mark.parametrize(
  'key,value,shown',
  [
    ('optimizer.lr', 0.02, 'optimizer.lr: 0.01 -> 0.02'),
    ('seed', 1, 'seed: 0 -> 1'),
    ('dataset.protocol', 'validation', "dataset.protocol: 'full' -> 'validation'"),
    ('bits', 24, 'bits: 16 -> 24'),
  ],
)
def test_another_setting_is_refused_before_anything_is_written(tmp_path, key, value, shown):
  workdir = str(tmp_path)
  trainer.train_and_evaluate(helpers.tiny_dsh_config(num_steps=4, **SGD), workdir)
  before = _snapshot(workdir)
  with pytest.raises(errors.ConfigMismatchError, match='holds checkpoint step 4 of a run with other settings') as e:
    trainer.train_and_evaluate(helpers.tiny_dsh_config(num_steps=8, **{**SGD, key: value}), workdir)
  assert shown in str(e.value)
  assert ('allow_changes' in str(e.value)) == (key != 'bits')  # a structural change cannot be allowed
  assert _snapshot(workdir) == before


def test_allowed_changes_resume_and_are_recorded(tmp_path):
  workdir = str(tmp_path)
  trainer.train_and_evaluate(helpers.tiny_dsh_config(num_steps=4, **SGD), workdir)
  # Longer, other evaluation and logging settings, other devices: the same run.
  final = trainer.train_and_evaluate(
    helpers.tiny_dsh_config(
      num_steps=8, num_devices=2, log_every_steps=2, **{**SGD, 'eval.topk': (20,), 'checkpoint.keep': 5}
    ),
    workdir,
  )
  assert final['step'] == 8 and 'mAP@20' in final
  (record,) = [json.loads(line) for line in open(os.path.join(workdir, 'config_changes.jsonl'))]
  assert record['step'] == 4 and set(record['changes']) == {
    'num_steps',
    'num_devices',
    'log_every_steps',
    'eval.topk',
    'checkpoint.keep',
  }
  assert json.load(open(os.path.join(workdir, 'config.json')))['num_steps'] == 8


def test_a_finished_run_rerun_says_it_is_done_and_trains_nothing(tmp_path, capsys):
  workdir = str(tmp_path)
  first = trainer.train_and_evaluate(helpers.tiny_dsh_config(num_steps=4), workdir)
  before = _snapshot(workdir)
  again = trainer.train_and_evaluate(helpers.tiny_dsh_config(num_steps=4), workdir)
  assert again == first and 'already finished at step 4' in capsys.readouterr().out
  assert _snapshot(workdir) == before


def test_metrics_rows_past_the_restored_step_are_dropped(tmp_path):
  workdir = str(tmp_path)
  trainer.train_and_evaluate(helpers.tiny_dsh_config(num_steps=8, log_every_steps=2), workdir)
  # What a run killed after step 8's rows but before step 8's checkpoint left: rows past step 4.
  os.rename(os.path.join(workdir, 'checkpoints', '8'), os.path.join(tmp_path, 'gone'))
  os.remove(os.path.join(workdir, 'final_metrics.json'))
  trainer.train_and_evaluate(helpers.tiny_dsh_config(num_steps=8, log_every_steps=2), workdir)
  rows = [json.loads(line) for line in open(os.path.join(workdir, 'metrics.jsonl'))]
  keys = [(r['step'], r['split']) for r in rows]
  assert keys == [(2, 'train'), (4, 'train'), (6, 'train'), (8, 'train'), (8, 'eval')]


# ---------------------------------------------------------------- checksums
def _flip_checksum(workdir, step, item='params'):
  """Changes one recorded checksum: the array on disk no longer matches what was saved."""
  meta_dir = os.path.join(workdir, 'checkpoints', str(step), 'meta')
  (path,) = [
    os.path.join(meta_dir, f)
    for f in os.listdir(meta_dir)
    if not f.startswith(('_', '.')) and os.path.isfile(os.path.join(meta_dir, f)) and 'commit' not in f
  ]
  meta = json.load(open(path))
  name = sorted(meta['checksums'][item])[0]
  meta['checksums'][item][name] = meta['checksums'][item][name][:-1] + 'x'
  json.dump(meta, open(path, 'w'))
  return name


def test_a_checksum_mismatch_stops_every_restore_and_an_earlier_step_can_be_chosen(tmp_path):
  workdir = str(tmp_path)
  config = helpers.tiny_dsh_config(num_steps=8, **SGD)
  trainer.train_and_evaluate(config, workdir)
  name = _flip_checksum(workdir, 8)
  message = f'checkpoint {workdir}/checkpoints/8: params/{name} fails its checksum'
  with pytest.raises(checkpoint.CheckpointError, match=message):  # evaluate, classify, retrieve
    workdir_eval.load_run(workdir)
  with pytest.raises(checkpoint.CheckpointError, match=message):  # init_from
    trainer.train_and_evaluate(helpers.tiny_dsh_config(init_from=workdir), str(tmp_path / 'other'))
  before = _snapshot(workdir)
  with pytest.raises(checkpoint.CheckpointError, match=message):  # training resume
    trainer.train_and_evaluate(helpers.tiny_dsh_config(num_steps=12, **SGD), workdir)
  assert _snapshot(workdir) == before
  # On purpose: an earlier verified step; the later one is kept aside, not deleted.
  assert workdir_eval.load_run(workdir, step=4)[3] == 4
  final = trainer.train_and_evaluate(
    helpers.tiny_dsh_config(num_steps=12, **{**SGD, 'checkpoint.restore_step': 4}), workdir
  )
  assert final['step'] == 12 and checkpoint.steps(workdir)[-1] == 12
  assert os.listdir(os.path.join(workdir, 'checkpoints_set_aside')) == ['8']


@pytest.mark.parametrize('where', [1, 2, 3, 4])
def test_a_flipped_bit_in_a_parameter_file_never_loads_wrong_values(tmp_path, where):
  """The flip lands at another eighth of every data file in each case. Either the load fails (the
  checksum, or the decoder), or the bit was one no value is read from and the values are exact."""
  workdir = str(tmp_path)
  trainer.train_and_evaluate(helpers.tiny_dsh_config(num_steps=4, **SGD), workdir)
  saved = workdir_eval.load_run(workdir)[2]
  for path in glob.glob(os.path.join(workdir, 'checkpoints', '4', 'params', 'ocdbt.process_0', 'd', '*')):
    data = bytearray(open(path, 'rb').read())
    data[len(data) * where // 8] ^= 0x10
    open(path, 'wb').write(data)
  try:
    loaded = workdir_eval.load_run(workdir)[2]
  except checkpoint.CheckpointError as e:
    assert re.search('fails its checksum|is corrupt|does not fit', str(e)), e
  else:
    jax.tree.map(np.testing.assert_array_equal, loaded, saved)


# ---------------------------------------------------------------- one line per error
def test_a_truncated_checkpoint_is_one_line(tmp_path):
  workdir = str(tmp_path)
  trainer.train_and_evaluate(helpers.tiny_dsh_config(num_steps=8, **{'model.width': 0.25}), workdir)
  for path in glob.glob(os.path.join(workdir, 'checkpoints', '8', 'params', 'ocdbt.process_0', 'd', '*')):
    os.truncate(path, 10)
  os.remove(os.path.join(workdir, 'final_metrics.json'))
  _one_error_line(_run(workdir), 'checkpoints/8 is corrupt', 'restore_step=N (steps: 4, 8)')


def test_an_incompatible_init_from_is_one_line_and_a_typo_creates_nothing(tmp_path):
  source = str(tmp_path / 'source')
  trainer.train_and_evaluate(helpers.tiny_dsh_config(num_steps=4, **{'model.width': 0.5}), source)
  _one_error_line(_run(str(tmp_path / 'a'), f'--config.init_from={source}'), 'does not fit this model')
  typo = str(tmp_path / 'no_such_run')
  with pytest.raises(checkpoint.CheckpointError, match='no checkpoint found'):
    trainer.train_and_evaluate(helpers.tiny_dsh_config(init_from=typo), str(tmp_path / 'b'))
  assert not os.path.exists(typo)


def test_a_full_disk_is_one_line_and_the_previous_checkpoint_stays_usable(tmp_path):
  """A tmpfs just large enough for the run so far: the next checkpoint does not fit."""
  if os.geteuid() != 0:
    pytest.skip('mounting a small tmpfs needs root')
  mount = str(tmp_path / 'small')
  os.makedirs(mount)
  first = str(tmp_path / 'first')
  assert _run(first).returncode == 0
  os.remove(os.path.join(first, 'final_metrics.json'))
  if subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', mount]).returncode:
    pytest.skip('cannot mount a tmpfs here')
  try:
    workdir = os.path.join(mount, 'run')
    subprocess.run(['cp', '-a', first, workdir], check=True)
    fs = os.statvfs(mount)
    used = (fs.f_blocks - fs.f_bfree) * fs.f_frsize
    # Four pages to spare: the metrics lines fit, a checkpoint (dozens of files, a page each) does not.
    subprocess.run(['mount', '-o', f'remount,size={used + 4 * fs.f_frsize}', mount], check=True)
    full = _run(workdir, '--config.num_steps=40')
    _one_error_line(full, 'disk')
    assert checkpoint.steps(workdir)[-1] == 8
    subprocess.run(['mount', '-o', 'remount,size=64m', mount], check=True)
    resumed = _run(workdir, '--config.num_steps=40')
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert (
      'resumed from' in resumed.stdout and json.load(open(os.path.join(workdir, 'final_metrics.json')))['step'] == 40
    )
  finally:
    subprocess.run(['umount', mount])


def test_bad_files_are_one_line(tmp_path, capsys):
  from hashjax import evaluate  # pylint: disable=g-import-not-at-top
  from hashjax import weights  # pylint: disable=g-import-not-at-top
  from hashjax.data import sources  # pylint: disable=g-import-not-at-top

  text = tmp_path / 'codes.txt'
  text.write_text('1 0 1\n0 1 1\n')
  np.save(tmp_path / 'labels.npy', np.array([0, 1]))
  assert (
    evaluate.main(
      [
        '--query_codes',
        str(text),
        '--query_labels',
        str(tmp_path / 'labels.npy'),
        '--db_codes',
        str(text),
        '--db_labels',
        str(tmp_path / 'labels.npy'),
      ]
    )
    == 2
  )
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and 'is not a .npy file' in err[0], err

  garbage = tmp_path / 'vgg16.safetensors'
  garbage.write_bytes(b'\x00garbage' * 10)
  assert weights.main(['convert', '--arch', 'vgg16', '--src', str(garbage), '--dst', str(tmp_path / 'w')]) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and 'is not a readable safetensors file' in err[0], err

  idx = tmp_path / 'train-images-idx3-ubyte.gz'
  import gzip  # pylint: disable=g-import-not-at-top

  idx.write_bytes(gzip.compress(bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2]) + bytes(8))[:20])
  with pytest.raises(ValueError, match='is truncated or not a gzip file'):
    sources.read_idx(str(idx))


@pytest.mark.parametrize(
  'key,value,message',
  [
    ('optimizer.lr', -0.1, 'optimizer.lr must be positive'),
    ('optimizer.lr', 0.0, 'optimizer.lr must be positive'),
    ('optimizer.lr', float('inf'), 'optimizer.lr must be a finite number'),
    ('optimizer.weight_decay', float('nan'), 'optimizer.weight_decay must be a finite number'),
    ('checkpoint.allow_changes', 'optimiser.lr', "names 'optimiser.lr', which is not a config key"),
  ],
)
def test_bad_hyperparameters_fail_validation(key, value, message):
  from hashjax.config import validate as config_validate  # pylint: disable=g-import-not-at-top

  with pytest.raises(ValueError, match=message):
    config_validate.validate(helpers.tiny_dsh_config(**{key: value}))
