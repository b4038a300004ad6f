"""Bad input fails early with a message naming the problem and the fix, and loses nothing."""

import os
import subprocess
import sys

import pytest

from hashjax.cli import errors
from hashjax.config import validate as config_validate
from hashjax.data import sources
from hashjax.train import trainer
from hashjax.workdir import checkpoint
from tests import helpers


def test_mistyped_config_key_lists_valid_keys():
  out = subprocess.run(
    [sys.executable, '-m', 'hashjax.main', '--config', 'configs/dsh.py:quick', '--config.optimizer.lrr=0.1'],
    cwd=helpers.ROOT,
    capture_output=True,
    text=True,
    env=dict(os.environ, JAX_PLATFORMS='cpu'),
  )
  assert out.returncode != 0
  assert "unknown config key 'optimizer.lrr'" in out.stderr
  assert 'lr, ' in out.stderr and 'momentum' in out.stderr  # the valid keys of that group


def test_unknown_config_argument():
  with pytest.raises(ValueError, match='valid: bits, dataset, features, pairs, protocol, quick'):
    helpers.load_config('dsh', 'quick,bitz=3')


@pytest.mark.parametrize(
  'key,value,message',
  [
    ('dataset.name', 'cifar11', 'unknown dataset .*valid names: cifar10, cifar100, coco, digits'),
    ('method', 'dhs', "unknown method 'dhs'; valid names: .*dsh"),
    ('model.name', 'resnet', "unknown model 'resnet'; valid names: .*dsh_net"),
    ('bits', 0, 'bits must be a positive integer'),
    ('bits', -4, 'bits must be a positive integer'),
    ('augment', 'mixup', "unknown augmentation 'mixup'"),
    ('dataset.protocol', 'cifar', "unknown protocol 'cifar'"),
  ],
)
def test_bad_values_fail_with_valid_choices(key, value, message):
  with pytest.raises(ValueError, match=message):
    config_validate.validate(helpers.tiny_dsh_config(**{key: value}))


def test_missing_dataset_names_the_command(tmp_path):
  with pytest.raises(sources.DatasetUnavailableError, match='apt-get install dataset-fashion-mnist'):
    sources.load('fashion_mnist', str(tmp_path))
  with pytest.raises(sources.DatasetUnavailableError, match='python -m hashjax.prepare_data cifar10'):
    sources.load('cifar10', str(tmp_path))


def _files(directory):
  return {os.path.join(r, f): os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(directory) for f in fs}


def test_corrupt_and_incompatible_checkpoints_are_refused_and_kept(tmp_path):
  workdir = str(tmp_path)
  config = helpers.tiny_dsh_config(num_steps=4)
  trainer.train_and_evaluate(config, workdir)
  ckpt_dir = os.path.join(workdir, 'checkpoints')

  with pytest.raises(checkpoint.CheckpointError, match='other settings .*bits: 16 -> 24'):
    trainer.train_and_evaluate(helpers.tiny_dsh_config(num_steps=8, bits=24), workdir)

  # Corrupt every data file of the latest checkpoint's parameters.
  before = _files(ckpt_dir)
  params_dir = os.path.join(ckpt_dir, '4', 'params')
  corrupted = [p for p in before if p.startswith(params_dir) and os.path.getsize(p) > 0]
  for path in corrupted:
    with open(path, 'r+b') as f:
      f.truncate(max(0, os.path.getsize(path) // 3))
  before = _files(ckpt_dir)
  with pytest.raises(checkpoint.CheckpointError, match='corrupt or does not match'):
    trainer.train_and_evaluate(helpers.tiny_dsh_config(num_steps=8), workdir)
  assert _files(ckpt_dir) == before  # nothing overwritten or deleted


def test_nan_loss_stops_without_saving_bad_parameters(tmp_path):
  config = helpers.tiny_dsh_config(num_steps=8, **{'optimizer.lr': 1e30, 'optimizer.name': 'sgd'})
  with pytest.raises(errors.NonFiniteError, match='training diverged at step .*non-finite training metrics'):
    trainer.train_and_evaluate(config, str(tmp_path))
  assert checkpoint.steps(str(tmp_path)) == []


@pytest.mark.parametrize(
  'value,message',
  [
    ('imagenet', 'normalize=imagenet needs RGB images'),
    ('batch', "unknown normalize 'batch'; valid names: dataset, imagenet"),
  ],
)
def test_normalize_choices(value, message):
  with pytest.raises(ValueError, match=message):
    trainer.build(helpers.tiny_dsh_config(normalize=value))
