"""DLBHC: codes from the latent layer, the loss against NumPy, coarse-to-fine ranking on a hand-made
case, the resize-crop augmentation, the config, and a short run + `retrieve --per_class`."""

import json
import math
import os

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np
import pytest

from hashjax import methods
from hashjax import models
from hashjax.config import validate as config_validate
from hashjax.data import augment
from hashjax.methods import dlbhc
from hashjax.models import backbones
from hashjax.models import dlbhc as dlbhc_models
from hashjax.retrieval import coarse_to_fine
from hashjax.retrieval import codes as codes_lib
from hashjax.retrieval import metrics as metrics_lib
from hashjax.retrieval import search
from tests import helpers


def test_codes_are_latent_at_least_half():
  # 0.49999997 is the float32 just below 0.5; 0.5 itself is a 1 (latent >= 0.5).
  latent = np.array([[0.5, np.nextafter(np.float32(0.5), np.float32(0)), 0.7, 0.0, 1.0, 0.25, 0.5000001]], np.float32)
  codes = np.asarray(methods.get('dlbhc').to_codes({'latent': jnp.asarray(latent), 'logits': None}))
  packed = codes_lib.pack_codes(codes, binary01=False)
  np.testing.assert_array_equal(codes_lib.unpack_codes(packed, latent.shape[1]), [[1, -1, 1, -1, 1, -1, 1]])  # +-1 bits
  np.testing.assert_array_equal(codes >= 0, latent >= 0.5)


def test_model_latent_is_sigmoid_of_the_latent_layer_and_feeds_the_classifier():
  config = mlc.ConfigDict(dict(name='dlbhc_dsh_net', num_classes=10, width=0.25))
  graphdef, params = models.build(config, 12, (16, 16, 1), jax.random.key(0))
  forward = jax.jit(models.make_forward(graphdef), static_argnames=('train', 'with_features'))
  x = jax.random.normal(jax.random.key(1), (5, 16, 16, 1))
  features, out = forward(params, x, train=False, with_features=True)
  assert features.shape == (5, 125) and out['latent'].shape == (5, 12) and out['logits'].shape == (5, 10)
  b = params['backbone']
  z = np.asarray(features) @ np.asarray(b['fc2']['kernel']) + np.asarray(b['fc2']['bias'])
  latent = 1 / (1 + np.exp(-z))
  np.testing.assert_allclose(out['latent'], latent, rtol=1e-5, atol=1e-6)
  c = params['classifier']
  np.testing.assert_allclose(
    out['logits'], latent @ np.asarray(c['kernel']) + np.asarray(c['bias']), rtol=1e-4, atol=1e-5
  )
  np.testing.assert_allclose(forward(params, x, train=False)['latent'], out['latent'])


def test_backbone_model_has_features_dropout_and_pretrained_slot():
  # Building a ResNet18 costs seconds of eager initialisation: once, small, and greyscale as Fashion-MNIST.
  config = mlc.ConfigDict(dict(name='dlbhc_resnet18', num_classes=10, width=0.125))
  graphdef, params = models.build(config, 16, (16, 16, 1), jax.random.key(0))
  forward = jax.jit(models.make_forward(graphdef), static_argnames=('train', 'with_features'))
  x = jax.random.normal(jax.random.key(1), (3, 16, 16, 1))
  features, out = forward(params, x, train=False, with_features=True)
  assert features.shape == (3, 64) and out['latent'].shape == (3, 16) and out['logits'].shape == (3, 10)
  assert np.all(np.asarray(features) >= 0)  # fc7 after its ReLU, what the latent layer reads
  # Dropout (0.5 by default) acts only in training; `models.build` loads pretrained weights into it.
  train_out = forward(params, x, train=True, rng=jax.random.key(2))
  assert not np.allclose(train_out['latent'], out['latent'])
  assert issubclass(dlbhc_models.DLBHCNet, backbones.HashNet) and set(params) >= {'backbone', 'head', 'classifier'}
  with pytest.raises(ValueError, match='num_classes'):
    models.build(mlc.ConfigDict(dict(name='dlbhc_resnet18')), 16, (16, 16, 1), jax.random.key(0))
  with pytest.raises(ValueError, match='head_activation'):
    models.build(
      mlc.ConfigDict(dict(name='dlbhc_resnet18', num_classes=10, head_activation='tanh')),
      16,
      (16, 16, 1),
      jax.random.key(0),
    )


def test_loss_matches_numpy():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(7, 5)).astype(np.float32) * 3
  labels = rng.integers(0, 5, size=7)
  latent = rng.uniform(size=(7, 12)).astype(np.float32)
  forward = lambda params, images, **kwargs: {'latent': jnp.asarray(latent), 'logits': jnp.asarray(logits)}
  loss, metrics = dlbhc.loss_fn({}, {'image': None, 'label': jnp.asarray(labels)}, None, forward=forward, config=None)
  shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
  log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
  np.testing.assert_allclose(loss, -log_probs[np.arange(7), labels].mean(), rtol=1e-6)
  np.testing.assert_allclose(metrics['accuracy'], np.mean(logits.argmax(1) == labels))
  np.testing.assert_allclose(metrics['bits_on'], np.mean(latent >= 0.5))
  np.testing.assert_allclose(metrics['latent_margin'], np.mean(np.abs(latent - 0.5)), rtol=1e-6)
  with pytest.raises(ValueError, match='class-id labels'):
    dlbhc.loss_fn({}, {'image': None, 'label': jnp.ones((7, 5))}, None, forward=forward, config=None)


# Hand-made: 4-bit codes, 1-D features; the query is code 0000 at feature 0.
#   item:     0     1     2     3     4
#   code:   0000  0001  0011  1111  0000   -> Hamming 0, 1, 2, 4, 0: Hamming order 0, 4, 1, 2, 3
#   feature:  5     1    0.5   0.1    3
_DB_BITS = np.array([[0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 1], [1, 1, 1, 1], [0, 0, 0, 0]])
_DB_FEATURES = np.array([[5.0], [1.0], [0.5], [0.1], [3.0]])


@pytest.mark.parametrize(
  'pool, pool_size, radius, expected, in_pool',
  [
    ('topm', 3, None, [1, 4, 0, 2, 3], [1, 1, 1, 0, 0]),  # pool {0, 4, 1} by feature, then Hamming order
    ('topm', 5, None, [3, 2, 1, 4, 0], [1, 1, 1, 1, 1]),  # everything by feature
    ('radius', 5, 1, [1, 4, 0, 2, 3], [1, 1, 1, 0, 0]),  # ball d <= 1 = {0, 4, 1}
    ('radius', 5, 2, [2, 1, 4, 0, 3], [1, 1, 1, 1, 0]),  # ball d <= 2 adds 2
    ('radius', 2, 2, [4, 0, 1, 2, 3], [1, 1, 0, 0, 0]),  # ball capped at the 2 nearest codes
  ],
)
def test_coarse_to_fine_hand_made(pool, pool_size, radius, expected, in_pool):
  q = codes_lib.pack_codes(np.zeros((1, 4), bool))
  db = codes_lib.pack_codes(_DB_BITS.astype(bool))
  kwargs = dict(radius=radius) if radius is not None else {}
  ranking = coarse_to_fine.coarse_to_fine(
    q, db, np.zeros((1, 1)), _DB_FEATURES, k=5, bits=4, pool=pool, pool_size=pool_size, **kwargs
  )
  np.testing.assert_array_equal(ranking.indices[0], expected)
  np.testing.assert_array_equal(ranking.in_pool[0], in_pool)
  np.testing.assert_array_equal(ranking.hamming[0], np.array([0, 1, 2, 4, 0])[expected])
  pooled = np.asarray(in_pool, bool)
  np.testing.assert_allclose(ranking.feature_distance[0][pooled], _DB_FEATURES[expected, 0][pooled], rtol=1e-6)
  assert np.all(np.isinf(ranking.feature_distance[0][~pooled]))
  # k < the list: the first k of the same order.
  short = coarse_to_fine.coarse_to_fine(
    q, db, np.zeros((1, 1)), _DB_FEATURES, k=2, bits=4, pool=pool, pool_size=pool_size, **kwargs
  )
  np.testing.assert_array_equal(short.indices[0], expected[:2])


def test_coarse_to_fine_equal_features_keep_hamming_order_and_errors():
  q = codes_lib.pack_codes(np.zeros((2, 4), bool))
  db = codes_lib.pack_codes(_DB_BITS.astype(bool))
  ranking = coarse_to_fine.coarse_to_fine(q, db, np.ones((2, 3)), np.ones((5, 3)), k=5, bits=4, pool_size=5)
  np.testing.assert_array_equal(ranking.indices, [[0, 4, 1, 2, 3]] * 2)
  with pytest.raises(ValueError, match='topm, radius'):
    coarse_to_fine.coarse_to_fine(q, db, np.ones((2, 3)), np.ones((5, 3)), k=5, bits=4, pool='ball')
  with pytest.raises(ValueError, match='do not match'):
    coarse_to_fine.coarse_to_fine(q, db, np.ones((2, 3)), np.ones((5, 2)), k=5, bits=4)


def test_ranked_list_metrics_of_the_hamming_list_equal_retrieval_metrics():
  rng = np.random.default_rng(0)
  q, db = (codes_lib.pack_codes(rng.integers(0, 2, (n, 6)).astype(bool)) for n in (20, 300))  # many ties
  ql, dl = rng.integers(0, 4, 20), rng.integers(0, 4, 300)
  reference = metrics_lib.retrieval_metrics(q, ql, db, dl, bits=6, topk=(50,), pn=(10, 50), ties='stable')
  _, order = search.topk_search(q, db, 50, bits=6)
  ranked = metrics_lib.ranked_list_metrics(ql, dl[np.asarray(order)], topk=(50,), pn=(10, 50))
  for key in ('mAP@50', 'P@10', 'P@50'):
    np.testing.assert_allclose(ranked[key], reference[key], rtol=1e-6)
  with pytest.raises(ValueError, match='ranked list length'):
    metrics_lib.ranked_list_metrics(ql, dl[np.asarray(order)], topk=(60,))


def test_resize_crop_flip_is_a_crop_of_the_upsampled_image():
  images = jax.random.normal(jax.random.key(0), (4, 16, 16, 1))
  out = np.asarray(augment.get('resize_crop_flip')(images, jax.random.key(1)))
  assert out.shape == images.shape
  big = np.asarray(jax.image.resize(images, (4, 18, 18, 1), 'bilinear'))  # round(16 * 256 / 227) = 18
  for b in range(4):
    crops = [
      c
      for dy in range(3)
      for dx in range(3)
      for c in (big[b, dy : dy + 16, dx : dx + 16], big[b, dy : dy + 16, dx : dx + 16][:, ::-1])
    ]
    assert any(np.allclose(out[b], c, atol=1e-6) for c in crops), b


def test_config_variants():
  c = helpers.load_config('dlbhc', None)
  with pytest.raises(ValueError, match='python -m hashjax.weights convert --arch resnet18'):
    config_validate.validate(c)  # the paper fine-tunes ImageNet weights: required (tests/test_pretrained_required.py)
  c.model.pretrained = 'none'
  config_validate.validate(c)
  assert (c.model.name, c.bits, c.image_size, c.augment, c.num_epochs, c.batch_size) == (
    'dlbhc_resnet18',
    48,
    227,
    'resize_crop_flip',
    50,
    200,
  )
  assert (c.optimizer.name, c.optimizer.lr, c.optimizer.momentum, c.optimizer.weight_decay) == ('sgd', 0.01, 0.9, 5e-4)
  assert c.dataset.name == 'cifar10' and c.model.num_classes == 0  # 0: the dataset's class count (models.build)
  c = helpers.load_config('dlbhc', 'backbone=vgg16,bits=32')
  assert c.model.name == 'dlbhc_vgg16' and c.bits == 32 and c.model.name in models.MODELS
  c = helpers.load_config('dlbhc', 'fashion_mnist')
  config_validate.validate(c)
  assert (c.dataset.name, c.model.name, c.image_size) == ('fashion_mnist', 'dlbhc_resnet18', 32)
  c = helpers.load_config('dlbhc', 'quick')
  config_validate.validate(c)
  assert (c.dataset.name, c.model.name, c.bits) == ('digits', 'dlbhc_dsh_net', 16)
  with pytest.raises(ValueError, match='backbone'):
    helpers.load_config('dlbhc', 'backbnoe=vgg16')


def test_quick_run_and_retrieve_per_class(tmp_path):
  from hashjax import retrieve
  from hashjax.eval import retrieval_examples
  from hashjax.train import trainer

  c = helpers.load_config('dlbhc', 'quick')
  c.num_steps = 6
  c.batch_size = 32
  c.log_every_steps = 3
  c.checkpoint.every_steps = 6
  c.model.width = 0.25
  c.eval.batch_size = 512
  workdir = str(tmp_path / 'run')
  final = trainer.train_and_evaluate(c, workdir)
  assert final['step'] == 6 and math.isfinite(final['mAP'])
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    rows = [json.loads(line) for line in f if '"train"' in line]
  assert all(0.0 <= r['accuracy'] <= 1.0 for r in rows)

  assert retrieve.main(['--workdir', workdir, '--per_class', '3', '--pk', '5,10', '--topk', '20']) == 0
  with open(os.path.join(workdir, 'retrieval_metrics.json')) as f:
    out = json.load(f)
  assert out['num_queries'] == 30  # 3 per class, 10 classes
  assert set(out['hamming']) >= {'mAP@20', 'P@5', 'P@10'} and set(out['coarse_to_fine']) >= {'mAP@20', 'P@5', 'P@10'}
  assert all(0.0 <= v <= 1.0 for v in [*out['hamming'].values(), *out['coarse_to_fine'].values()])
  assert sum(out['histogram']['Hamming']) == sum(out['histogram']['coarse-to-fine']) == 20
  assert os.path.getsize(os.path.join(workdir, 'label_histogram.png')) > 0
  # --per_class 0: every query; a class with too few queries and a query file are errors.
  protocol = trainer.load_protocol(c)
  chosen = retrieval_examples.sample_per_class(protocol.labels, protocol.query, 0)
  np.testing.assert_array_equal(chosen, np.arange(len(protocol.query)))
  counts = np.bincount(
    protocol.labels[protocol.query[retrieval_examples.sample_per_class(protocol.labels, protocol.query, 4)]]
  )
  np.testing.assert_array_equal(counts, [4] * 10)
  assert retrieve.main(['--workdir', workdir, '--per_class', '1000']) == 2
  with pytest.raises(SystemExit):
    retrieve.main(['--workdir', workdir, '--per_class', '3', '--query_index', '1'])
