"""End to end: configs/cimon.py:quick, cut to a few steps, trains and evaluates to a finite mAP."""

import json
import math
import os

from hashjax.train import trainer
from tests import helpers


def test_quick_config_trains_and_evaluates(tmp_path):
  c = helpers.load_config('cimon', 'quick')
  assert c.method == 'cimon' and c.loss.graph == 'batch'
  c.augment = 'simclr'  # the default of the full config (quick uses 'crop')
  c.num_steps, c.batch_size, c.bits, c.model.width = 6, 32, 16, 0.25
  c.log_every_steps = c.checkpoint.every_steps = 3
  c.loss.kmeans_restarts, c.loss.kmeans_iters = 3, 20
  c.eval.topk, c.eval.pn, c.eval.batch_size = (50,), (10,), 512
  final = trainer.train_and_evaluate(c, str(tmp_path))
  assert final['step'] == 6
  assert math.isfinite(final['mAP']) and 0 < final['mAP'] <= 1
  assert final['graph_features'].startswith('pca (64 principal components')  # stated, never implied
  with open(os.path.join(tmp_path, 'metrics.jsonl')) as f:
    logged = [json.loads(line) for line in f]
  train_rows = [r for r in logged if r['split'] == 'train']
  assert {'semantic_loss', 'contrastive_loss', 'positive_fraction', 'mean_weight'} <= set(train_rows[-1])


def test_imagenet_backbone_variant_trains(tmp_path):
  """backbone=vgg11: the official head (ReLU -> Linear -> Tanh) on fc7 features, here tiny."""
  c = helpers.load_config('cimon', 'quick,backbone=vgg11')
  assert c.model.head_activation == 'tanh' and not c.loss.center_features
  c.image_size, c.model.width = 32, 0.125  # the real layer structure at 1/8 of the channels
  c.num_steps, c.batch_size, c.bits = 2, 16, 16
  c.log_every_steps = c.checkpoint.every_steps = 2
  c.loss.kmeans_restarts, c.loss.kmeans_iters = 2, 10
  c.eval.topk, c.eval.pn, c.eval.batch_size = (50,), (10,), 512
  final = trainer.train_and_evaluate(c, str(tmp_path))
  assert final['step'] == 2 and math.isfinite(final['mAP'])


def test_config_settings():
  """The default is the paper's CIFAR-10 run; fashion_mnist and quick train from scratch offline."""
  paper = helpers.load_config('cimon')
  assert (paper.dataset.name, paper.model.name, paper.loss.graph, paper.loss.graph_features, paper.bits) == (
    'cifar10',
    'vgg16',
    'global',
    'network',
    64,
  )
  assert (paper.optimizer.name, paper.optimizer.lr, paper.loss.eta, paper.batch_size, paper.num_epochs) == (
    'sgd',
    1e-3,
    0.3,
    24,
    150,
  )
  fm = helpers.load_config('cimon', 'fashion_mnist,bits=32')
  assert (fm.dataset.name, fm.model.name, fm.loss.graph, fm.loss.graph_features, fm.bits) == (
    'fashion_mnist',
    'dsh_net_tanh',
    'batch',
    'pca',
    32,
  )
  assert (fm.optimizer.name, fm.loss.eta, fm.batch_size) == ('adam', 3.0, 256)
  fm_global = helpers.load_config('cimon', 'fashion_mnist,graph=global')
  assert (
    fm_global.dataset.protocol,
    fm_global.dataset.protocol_args.train_per_class,
    fm_global.loss.threshold,
    fm_global.loss.graph_features,
    fm_global.loss.eta,
  ) == ('full', 500, 0.1, 'pca', 30.0)
  assert (paper.dataset.protocol, paper.dataset.protocol_args.train_per_class) == ('cimon', 500)
  quick = helpers.load_config('cimon', 'quick')
  assert (quick.dataset.name, quick.loss.graph, quick.bits, quick.num_steps) == ('digits', 'batch', 32, 300)
