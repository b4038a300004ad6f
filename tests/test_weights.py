"""hashjax.weights: torchvision state dict -> Orbax backbone checkpoint -> `--config.model.pretrained`.

Numerical equality of converted weights is tested per architecture in test_backbones.py; here the
file path (safetensors -> checkpoint -> models.build), the errors, and a tiny training run.
"""

import os

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from safetensors.numpy import save_file

from hashjax import models
from hashjax import weights
from hashjax.models import backbones
from hashjax.models.backbones import convert
from hashjax.models.backbones import vgg as vgg_lib
from hashjax.train import trainer
from hashjax.workdir import checkpoint
from tests import helpers
from tests import test_backbones as tb

WIDTH = 1 / 16


def _vgg_sd(arch, cin=3):
  cfg, batch_norm = vgg_lib.CONFIGS[arch]
  return {k: v.astype(np.float32) for k, v in tb.sd_vgg(cfg, batch_norm, WIDTH, cin=cin).items()}


def _convert_to(tmp_path, arch, sd, argv=()):
  src, dst = str(tmp_path / f'{arch}.safetensors'), str(tmp_path / 'weights' / arch)
  save_file(sd, src)
  assert weights.main(['convert', '--arch', arch, '--src', src, '--dst', dst, '--width', str(WIDTH), *argv]) == 0
  return dst


def test_convert_then_build_with_pretrained_matches_reference(tmp_path):
  """vgg11_bn (BatchNorm: its statistics travel as constants) through the CLI and models.build."""
  sd = _vgg_sd('vgg11_bn')
  dst = _convert_to(tmp_path, 'vgg11_bn', sd)
  graphdef, params = models.build(
    dict(name='vgg11_bn', width=WIDTH, pretrained=dst), 16, (32, 32, 3), jax.random.key(0)
  )
  head = nnx.eval_shape(lambda: backbones.HashNet('vgg11_bn', 16, (32, 32, 3), width=WIDTH, rngs=nnx.Rngs(0))).head
  assert params['head']['kernel'].shape == head.kernel.shape and np.abs(params['head']['kernel']).max() > 0
  x = tb.images((2, 3, 32, 32)).astype(np.float32)
  features, _ = jax.jit(lambda p, x: models.make_forward(graphdef)(p, x, train=False, with_features=True))(
    params, jnp.asarray(x.transpose(0, 2, 3, 1))
  )
  cfg, batch_norm = vgg_lib.CONFIGS['vgg11_bn']
  tb.assert_close(
    np.asarray(features, np.float64),
    tb.ref_vgg({k: v.astype(np.float64) for k, v in sd.items()}, cfg, batch_norm, x.astype(np.float64)),
  )


def test_wrong_architecture_is_named(tmp_path):
  with pytest.raises(convert.ConversionError, match='does not look like torchvision vgg16.*features.2.weight'):
    convert.convert_state_dict('vgg16', _vgg_sd('vgg11_bn'), width=WIDTH)


def test_missing_tensor_is_named():
  sd = _vgg_sd('vgg16')
  del sd['features.5.bias']
  with pytest.raises(convert.ConversionError, match=r'missing tensor: features\.5\.bias'):
    convert.convert_state_dict('vgg16', sd, width=WIDTH)


def test_misshaped_tensor_is_named():
  message = r'features\.0\.weight: expected \(4, 3, 3, 3\), got \(4, 1, 3, 3\)'
  with pytest.raises(convert.ConversionError, match=message):
    convert.convert_state_dict('vgg16', _vgg_sd('vgg16', cin=1), width=WIDTH)


def test_cli_reports_errors_in_one_line(tmp_path, capsys):
  sd = _vgg_sd('vgg16')
  del sd['classifier.3.weight']
  src = str(tmp_path / 'bad.safetensors')
  save_file(sd, src)
  assert (
    weights.main(['convert', '--arch', 'vgg16', '--src', src, '--dst', str(tmp_path / 'out'), '--width', str(WIDTH)])
    == 2
  )
  assert 'classifier.3.weight' in capsys.readouterr().err
  assert not os.path.exists(tmp_path / 'out')


def test_pth_without_torch_says_how_to_convert(tmp_path):
  pytest.importorskip('safetensors')
  try:
    import torch  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import

    pytest.skip('torch is installed: .pth is read directly')
  except ImportError:
    pass
  path = tmp_path / 'vgg16.pth'
  path.write_bytes(b'not read')
  with pytest.raises(convert.ConversionError, match='safetensors.*torch.load'):
    convert.read_state_dict(str(path))


def _abstract(arch, image_shape):
  """(params, constants) of a HashNet as shapes only, as models.build would have them."""
  model = nnx.eval_shape(lambda: backbones.HashNet(arch, 8, image_shape, width=WIDTH, rngs=nnx.Rngs(0)))
  _, params, constants = nnx.split(model, nnx.Param, ...)
  return nnx.to_pure_dict(params), nnx.to_pure_dict(constants)


def test_pretrained_checks_architecture_and_shapes(tmp_path):
  dst = _convert_to(tmp_path, 'vgg16', _vgg_sd('vgg16'))
  loaded, _ = backbones.load_pretrained(dst, 'vgg16', *_abstract('vgg16', (32, 32, 3)))
  assert loaded['backbone']['fc6']['kernel'].shape == (32 * 49, 256)
  with pytest.raises(ValueError, match="for 'vgg16', but the model is 'vgg19'"):
    backbones.load_pretrained(dst, 'vgg19', *_abstract('vgg19', (32, 32, 3)))
  with pytest.raises(ValueError, match=r'backbone\.convs\.0\.kernel.*\(3, 3, 1, 4\).*\(3, 3, 3, 4\)'):
    backbones.load_pretrained(dst, 'vgg16', *_abstract('vgg16', (32, 32, 1)))
  with pytest.raises(checkpoint.CheckpointError, match='no weights checkpoint'):
    backbones.load_pretrained(str(tmp_path / 'nothing'), 'vgg16', *_abstract('vgg16', (32, 32, 3)))
  with pytest.raises(ValueError, match='has no pretrained backbone'):
    models.build(dict(name='dsh_net', width=0.25, pretrained=dst), 8, (16, 16, 1), jax.random.key(0))


def test_tiny_training_run_from_pretrained(tmp_path):
  """Digits (1 channel, upsampled to 32x32) with a 1/16-width VGG11-BN from converted weights, 2 steps."""
  dst = _convert_to(tmp_path, 'vgg11_bn', _vgg_sd('vgg11_bn', cin=1), argv=['--in-channels', '1'])
  config = helpers.tiny_dsh_config(
    **{
      'model.name': 'vgg11_bn',
      'model.width': WIDTH,
      'model.pretrained': dst,
      'model.requires_pretrained': True,
      'image_size': 32,
      'num_steps': 2,
      'log_every_steps': 1,
      'checkpoint.every_steps': 2,
    }
  )
  run = trainer.build(config)  # the trainer's own path: the backbone starts from the converted weights
  converted = convert.convert_state_dict('vgg11_bn', _vgg_sd('vgg11_bn', cin=1), width=WIDTH, in_channels=1)
  np.testing.assert_array_equal(
    run.state.params['model']['backbone']['convs'][0]['kernel'], converted['params']['convs.0.kernel']
  )
  final = trainer.train_and_evaluate(config, str(tmp_path / 'run'))
  assert final['step'] == 2 and np.isfinite(final['mAP'])
  assert final['weights'] == dst  # the run states which weights it started from
