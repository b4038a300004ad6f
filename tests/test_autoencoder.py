"""Autoencoder hashing: network shapes, the slope schedules and loss against NumPy, and a short run."""

import functools
import json
import math
import os
import types

from flax import nnx
import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np
from PIL import Image
import pytest

from hashjax import models
from hashjax.config import validate as config_validate
from hashjax.methods import autoencoder as ae_method
from hashjax.models import autoencoder as ae_model
from tests import helpers


def _build(image_shape, bits=16, **model_kwargs):
  config = mlc.ConfigDict(dict(name='autoencoder', **model_kwargs))
  graphdef, params = models.build(config, bits, image_shape, jax.random.key(0))
  return graphdef, params, models.make_forward(graphdef)


@pytest.mark.parametrize(
  'image_shape, model_kwargs',
  [
    ((16, 16, 1), dict(filters=(8, 16, 32))),
    ((28, 28, 1), {}),  # pools 28 -> 14 -> 7 -> 4, decoder crops 4 -> 8 -> 7 -> 14 -> 28
    ((32, 32, 3), dict(filters=(8, 16), convs_per_block=2)),
  ],
)
def test_output_and_reconstruction_shapes(image_shape, model_kwargs):
  _, params, forward = _build(image_shape, bits=12, **model_kwargs)
  forward = jax.jit(forward, static_argnames='train')  # one compile instead of many eager ops
  x = jax.random.normal(jax.random.key(1), (3,) + image_shape)
  z = forward(params, x, train=False)
  assert z.shape == (3, 12) and z.dtype == jnp.float32
  z_again, h, reconstruction = forward(params, x, train=True, reconstruct_slope=jnp.float32(2.0))
  assert reconstruction.shape == x.shape
  np.testing.assert_allclose(z_again, z, rtol=1e-6)
  np.testing.assert_allclose(h, np.tanh(2.0 * np.asarray(z)), rtol=1e-5, atol=1e-6)


def test_batch_rms_code_norm_keeps_signs_and_fixes_the_scale_the_slope_sees():
  _, params, forward = _build((16, 16, 1), filters=(4, 8, 8), code_norm='batch_rms')
  forward = jax.jit(forward, static_argnames='train')
  x = jax.random.normal(jax.random.key(3), (6, 16, 16, 1))
  z, h, _ = forward(params, x, train=True, reconstruct_slope=jnp.float32(1.0))
  np.testing.assert_array_equal(np.sign(h), np.sign(z))
  np.testing.assert_allclose(np.mean(np.arctanh(np.asarray(h, np.float64)) ** 2, axis=0), 1.0, rtol=1e-3)
  with pytest.raises(ValueError, match='none, batch_rms'):
    _build((16, 16, 1), code_norm='batch')


@pytest.mark.parametrize('size', [(7, 7), (6, 9), (4, 4)])
def test_pool_matches_flax_max_pool_and_upsample_inverts_its_shape(size):
  x = jax.random.normal(jax.random.key(0), (2,) + size + (3,))
  pooled = ae_model.max_pool_2x2(x)
  np.testing.assert_array_equal(pooled, nnx.max_pool(x, (2, 2), (2, 2), 'SAME'))
  up = ae_model.upsample_2x(pooled, size)
  assert up.shape == x.shape
  np.testing.assert_array_equal(up[:, ::2, ::2], pooled[:, :, :, :])


def _slope_config(schedule, start=1.0, end=50.0, steps=200, every=1):
  return mlc.ConfigDict(
    dict(
      slope_schedule=schedule,
      slope_start=start,
      slope_end=end,
      slope_steps=steps,
      slope_update_every=every,
      binary_threshold=0.99,
    )
  )


def test_slope_schedules_match_numpy():
  steps = np.array([0, 1, 37, 100, 199, 200, 201, 1000])
  t = np.minimum(steps / 200, 1.0)
  expected = {'constant': np.full(len(steps), 1.0), 'linear': 1.0 + 49.0 * t, 'exponential': 1.0 * 50.0**t}
  for name, want in expected.items():
    got = np.array([float(jax.jit(lambda s: ae_method.slope_at(s, _slope_config(name)))(s)) for s in steps])
    np.testing.assert_allclose(got, want, rtol=1e-5)
  # Raised once every 50 steps ("once an epoch"): held at the value of the last multiple.
  got = [float(ae_method.slope_at(jnp.int32(s), _slope_config('exponential', every=50))) for s in steps]
  np.testing.assert_allclose(got, 50.0 ** np.minimum((steps // 50) * 50 / 200, 1.0), rtol=1e-5)


def test_bad_slope_settings_name_the_problem():
  """Checked once, when the run is built (the method's validate hook), not in the traced loss."""
  with pytest.raises(ValueError, match='constant, linear, exponential'):
    ae_method.validate(types.SimpleNamespace(loss=_slope_config('cosine')))
  with pytest.raises(ValueError, match='positive'):
    ae_method.validate(types.SimpleNamespace(loss=_slope_config('exponential', start=0.0)))


def test_binary_fraction_on_hand_made_codes():
  h = jnp.array([[0.999, -0.995, 0.5, -0.99], [1.0, 0.0, -1.0, 0.98]])
  assert float(ae_method.binary_fraction(h)) == pytest.approx(4 / 8)  # |h| > 0.99 strictly
  assert float(ae_method.binary_fraction(h, threshold=0.9)) == pytest.approx(6 / 8)


def test_loss_is_the_mse_of_decoding_tanh_of_slope_z_and_binarises_with_slope():
  graphdef, params, forward = _build((16, 16, 1), filters=(4, 8, 8))
  images = jax.random.normal(jax.random.key(2), (5, 16, 16, 1))
  z = np.asarray(jax.jit(lambda p, x: nnx.merge(graphdef, p).encode(x))(params, images), np.float64)
  decode = jax.jit(lambda p, h: nnx.merge(graphdef, p).decode(h))
  fractions = []
  for slope in (0.5, 5.0, 50.0):
    batch = {'image': images, 'step': jnp.int32(0)}
    loss, metrics = jax.jit(
      functools.partial(ae_method.loss_fn, forward=forward, config=_slope_config('constant', start=slope))
    )(params, batch, None)
    h = np.tanh(slope * z)
    reconstruction = np.asarray(decode(params, jnp.asarray(h, jnp.float32)), np.float64)
    want = np.mean((reconstruction - np.asarray(images, np.float64)) ** 2)
    np.testing.assert_allclose(float(loss), want, rtol=1e-4)
    assert float(metrics['mse']) == float(loss) and float(metrics['slope']) == pytest.approx(slope)
    assert float(metrics['binary_fraction']) == pytest.approx(np.mean(np.abs(h) > 0.99), abs=1e-6)
    assert float(metrics['mean_abs_code']) == pytest.approx(np.mean(np.abs(h)), rel=1e-4)
    fractions.append(float(metrics['binary_fraction']))
  assert fractions[0] < fractions[1] < fractions[2]


@pytest.mark.parametrize('variant', [None, 'mnist', 'fashion_mnist', 'cifar10', 'quick', 'fashion_mnist,bits=32'])
def test_config_variants_are_valid(variant):
  c = helpers.load_config('autoencoder', variant)
  config_validate.validate(c)
  assert c.method == 'autoencoder' and c.augment == 'none'
  dataset = {None: 'mnist', 'quick': 'digits'}[variant] if variant in (None, 'quick') else variant.split(',')[0]
  assert c.dataset.name == dataset
  assert c.bits == (32 if variant and 'bits=32' in variant else 16)
  assert c.optimizer.name == 'adam' and c.optimizer.schedule == 'linear' and c.optimizer.end_lr == 1e-5
  assert c.loss.slope_schedule in ae_method.SLOPE_SCHEDULES
  if variant in (None, 'mnist'):
    assert tuple(c.model.filters) == (16, 32, 64) and c.optimizer.lr == 1e-3


def test_quick_run_trains_and_draws_the_retrieval_grid(tmp_path):
  from hashjax import retrieve
  from hashjax.eval import retrieval_examples
  from hashjax.train import trainer

  c = helpers.load_config('autoencoder', 'quick')
  c.num_steps = 10
  c.loss.slope_steps = 6
  c.log_every_steps = 1
  c.checkpoint.every_steps = 10
  c.model.filters = (4, 8, 8)
  c.eval.batch_size = 512
  workdir = str(tmp_path / 'run')
  final = trainer.train_and_evaluate(c, workdir)
  assert final['step'] == 10 and math.isfinite(final['mAP']) and 0.0 < final['mAP'] <= 1.0
  # The annealed tanh ends binary on this toy run: b rose to its final value by step 6.
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    rows = [json.loads(line) for line in f if '"train"' in line]
  assert rows[0]['binary_fraction'] < 0.5 < 0.95 < rows[-1]['binary_fraction'], [r['binary_fraction'] for r in rows]
  path = retrieval_examples.make_retrieval_grid(workdir, num_queries=3, k=5)
  assert path == os.path.join(workdir, 'retrieval_grid.png') and os.path.getsize(path) > 0
  assert retrieve.main(['--workdir', str(tmp_path / 'nowhere')]) == 2
  # Given queries, and an image file: a PNG of a dataset image reads back as exactly that image.
  assert (
    retrieve.main(
      [
        '--workdir',
        workdir,
        '--query_index',
        '0',
        '--query_index',
        '5',
        '--k',
        '4',
        '--out',
        str(tmp_path / 'given.png'),
      ]
    )
    == 0
  )
  protocol = trainer.load_protocol(c)
  image = protocol.images[protocol.query[0]]
  Image.fromarray(image[..., 0]).save(tmp_path / 'q.png')
  np.testing.assert_array_equal(retrieval_examples.load_query_image(str(tmp_path / 'q.png'), image.shape), image)
  assert (
    retrieve.main(['--workdir', workdir, '--query', str(tmp_path / 'q.png'), '--out', str(tmp_path / 'file.png')]) == 0
  )
  for name in ('given.png', 'file.png'):
    assert os.path.getsize(tmp_path / name) > 0
  assert retrieve.main(['--workdir', workdir, '--query_index', '100000']) == 2
  # Hash-table lookup within a Hamming radius (blank cells where a query has fewer than k).
  assert (
    retrieve.main(
      ['--workdir', workdir, '--radius', '1', '--k', '4', '--queries', '3', '--out', str(tmp_path / 'ball.png')]
    )
    == 0
  )
  assert (tmp_path / 'ball.png').stat().st_size > 0
