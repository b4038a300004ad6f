"""Settings meant for ImageNet weights (model.requires_pretrained) stop at config validation, before any
data is read, with one line naming the convert command; `model.pretrained=none` trains from random
initialisation on purpose; the :quick variants need no weights."""

import os
import subprocess
import sys

import pytest

from hashjax import models
from hashjax.config import validate as config_validate
from hashjax.data import sources
from hashjax.train import trainer
from tests import helpers

CONVERT = 'python -m hashjax.weights convert --arch {} --src FILE --dst DIR'

# (config, arg) -> the --arch of its weights
NEEDS_WEIGHTS = {
  ('cimon', None): 'vgg16',  # the paper's CIFAR-10 run
  ('cimon', 'backbone=vgg11'): 'vgg11',
  ('cimon', 'dataset=fashion_mnist,backbone=resnet18'): 'resnet18',
  ('cimon', 'stl10'): 'vgg11_bn',
  ('dlbhc', None): 'resnet18',
  ('dlbhc', 'backbone=vgg16,bits=32'): 'vgg16',
  ('dcwh', 'paper'): 'googlenet',
  ('idcwh', 'paper'): 'googlenet',
  ('idcwh', 'paper,dataset=cifar100'): 'googlenet',
}
CONFIGS = sorted(n[:-3] for n in os.listdir(os.path.join(helpers.ROOT, 'configs')) if n.endswith('.py'))


@pytest.mark.parametrize('config,arg', sorted(NEEDS_WEIGHTS, key=str))
def test_settings_meant_for_imagenet_weights_name_the_convert_command(config, arg):
  c = helpers.load_config(config, arg)
  assert c.model.requires_pretrained and c.model.pretrained == ''
  with pytest.raises(ValueError) as e:
    config_validate.validate(c)
  message = str(e.value)
  assert '\n' not in message and CONVERT.format(NEEDS_WEIGHTS[config, arg]) in message
  assert 'model.requires_pretrained' in message and '--config.model.pretrained=none' in message
  c.model.pretrained = 'none'  # from scratch, on purpose
  config_validate.validate(c)


@pytest.mark.parametrize('config', CONFIGS)
def test_quick_and_default_offline_settings_need_no_weights(config):
  for arg in ('quick', *(['quick,backbone=vgg11', 'fashion_mnist'] if config in ('cimon', 'dlbhc') else [])):
    c = helpers.load_config(config, arg)
    assert not c.model.requires_pretrained, arg
    config_validate.validate(c)
  if config not in ('cimon', 'dlbhc'):  # the defaults train from scratch except these two papers' runs
    config_validate.validate(helpers.load_config(config))


def test_stops_before_reading_any_data(tmp_path, monkeypatch):
  read = []
  monkeypatch.setattr(sources, 'load', lambda *a, **k: read.append(a) or pytest.fail('data read'))
  c = helpers.load_config('dlbhc')
  c.dataset.data_dir = str(tmp_path / 'cifar')
  workdir = str(tmp_path / 'run')
  with pytest.raises(ValueError, match='--arch resnet18'):
    trainer.train_and_evaluate(c, workdir)
  assert not read and not os.path.exists(workdir)  # nothing read, nothing written
  monkeypatch.undo()
  # pretrained=none passes validation; the run then reads the data (not there: its own clear error).
  c.model.pretrained = 'none'
  with pytest.raises(sources.DatasetUnavailableError, match='cifar-10-python.tar.gz'):
    trainer.train_and_evaluate(c, workdir)


def test_the_command_prints_one_line_and_exits_2(tmp_path):
  out = subprocess.run(
    [sys.executable, '-m', 'hashjax.main', '--config', 'configs/dcwh.py:paper', '--workdir', str(tmp_path / 'run')],
    cwd=helpers.ROOT,
    capture_output=True,
    text=True,
    env=dict(os.environ, JAX_PLATFORMS='cpu'),
  )
  assert out.returncode == 2 and out.stdout == ''
  lines = out.stderr.strip().splitlines()
  assert len(lines) == 1 and CONVERT.format('googlenet') in lines[0]
  assert not os.path.exists(tmp_path / 'run')


def test_bad_pretrained_values_fail_at_validation(tmp_path):
  c = helpers.load_config('dlbhc')
  c.model.pretrained = str(tmp_path / 'not_converted')
  with pytest.raises(
    ValueError, match=f'is not a directory: .*--arch resnet18 --src FILE --dst {tmp_path}/not_converted'
  ):
    config_validate.validate(c)
  c = helpers.tiny_dsh_config(**{'model.pretrained': str(tmp_path)})
  with pytest.raises(ValueError, match="model 'dsh_net' has no pretrained backbone"):
    config_validate.validate(c)
  c = helpers.tiny_dsh_config(**{'model.requires_pretrained': True})
  with pytest.raises(ValueError, match='requires_pretrained=True, but model .dsh_net. has no pretrained backbone'):
    config_validate.validate(c)
  config_validate.validate(helpers.tiny_dsh_config(**{'model.pretrained': 'none'}))


def test_which_weights_a_run_states():
  c = helpers.load_config('cimon', 'quick,backbone=vgg11')
  assert models.describe_weights(c.model) == 'none (random init)'
  c.model.pretrained = 'none'
  assert models.describe_weights(c.model) == 'none (random init)'
  c.model.pretrained = 'weights/vgg11'
  assert models.describe_weights(c.model) == 'weights/vgg11'
