"""End to end: configs/cimon.py:quick, cut to a few steps, trains and evaluates to a finite mAP."""

import json
import math
import os

from hashjax import train
from tests import helpers


def test_quick_config_trains_and_evaluates(tmp_path):
  c = helpers.load_config('cimon', 'quick')
  assert c.method == 'cimon' and c.loss.graph == 'batch'
  c.augment = 'simclr'  # the default of the full config (quick uses 'crop')
  c.num_steps, c.batch_size, c.bits, c.model.width = 6, 32, 16, 0.25
  c.log_every_steps = c.checkpoint.every_steps = 3
  c.loss.kmeans_restarts, c.loss.kmeans_iters = 3, 20
  c.eval.topk, c.eval.pn, c.eval.batch_size = (50,), (10,), 512
  final = train.train_and_evaluate(c, str(tmp_path))
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
  final = train.train_and_evaluate(c, str(tmp_path))
  assert final['step'] == 2 and math.isfinite(final['mAP'])
