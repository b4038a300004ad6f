"""Shallow baselines through the trainer's entry point: same numbers as calling them directly."""

import json
import os

import numpy as np
import pytest

from hashjax import baselines
from hashjax.config import validate as config_validate
from hashjax.retrieval.codes import pack_codes
from hashjax.retrieval.metrics import retrieval_metrics
from hashjax.train import trainer
from tests import helpers


@pytest.mark.parametrize('name', sorted(baselines.BASELINES))
def test_config_run_equals_direct_fit(name, tmp_path):
  config = helpers.load_config(name, 'quick')
  got = trainer.train_and_evaluate(config, str(tmp_path))
  protocol = trainer.load_protocol(config)
  x = protocol.images.reshape(len(protocol.images), -1).astype(np.float32) / 255.0
  options = {k: v for k, v in config.loss.items() if k != 'features'}
  encoder = baselines.get(name)(x[protocol.train], config.bits, seed=config.seed, **options)
  want = retrieval_metrics(
    pack_codes(encoder.encode(x[protocol.query])),
    protocol.labels[protocol.query],
    pack_codes(encoder.encode(x[protocol.database])),
    protocol.labels[protocol.database],
    bits=config.bits,
    topk=tuple(config.eval.topk),
    pn=tuple(config.eval.pn),
  )
  for key, value in want.items():
    assert got[key] == pytest.approx(value, rel=1e-12), key
  assert 0.2 < got['mAP'] < 1.0
  with open(os.path.join(tmp_path, 'final_metrics.json')) as f:
    assert json.load(f)['mAP'] == got['mAP']
  with np.load(os.path.join(tmp_path, 'encoder.npz')) as f:
    rebuilt = baselines.from_arrays(dict(f))
  np.testing.assert_array_equal(rebuilt.encode(x[:50]), encoder.encode(x[:50]))


def test_feature_file_instead_of_pixels(tmp_path):
  config = helpers.load_config('itq', 'quick')
  protocol = trainer.load_protocol(config)
  rng = np.random.default_rng(0)
  # Features that are the one-hot label plus noise: ITQ on them retrieves far better than pixels do.
  features = np.eye(10)[protocol.labels] + 0.05 * rng.standard_normal((len(protocol.labels), 10))
  np.save(tmp_path / 'f.npy', features.astype(np.float32))
  config.loss.features = str(tmp_path / 'f.npy')
  config.bits = 8
  assert trainer.train_and_evaluate(config, str(tmp_path / 'run'))['mAP'] > 0.9  # pixels: ~0.6
  np.save(tmp_path / 'short.npy', features[:10])
  config.loss.features = str(tmp_path / 'short.npy')
  with pytest.raises(ValueError, match='one row per image of the pool'):
    trainer.train_and_evaluate(config, str(tmp_path / 'run2'))


def test_unknown_method_lists_deep_and_shallow_names():
  config = helpers.load_config('lsh', 'quick')
  config.method = 'lhs'
  with pytest.raises(ValueError, match="unknown method 'lhs'; valid names: .*dsh.*itq.*lsh"):
    config_validate.validate(config)
