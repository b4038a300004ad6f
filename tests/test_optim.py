"""Per-group learning rates (`optimizer.lr_multipliers`): scaled, frozen, and clear errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from hashjax.config import common
from hashjax.train import optim


def _config(**kw):
  """The schema's optimizer group (every key, its defaults stated once), with plain SGD at lr 0.1."""
  c = common.base_config().optimizer
  c.update(name='sgd', lr=0.1, momentum=0.0, **kw)
  return c


PARAMS = {
  'model': {'body': {'kernel': jnp.ones(3)}, 'head': {'kernel': jnp.ones(2)}},
  'method': {'centers': jnp.ones((2, 2))},
}
GRADS = {
  'model': {'body': {'kernel': jnp.ones(3)}, 'head': {'kernel': jnp.ones(2)}},
  'method': {'centers': jnp.ones((2, 2))},
}


def _update(config):
  tx = optim.build(config, total_steps=10, steps_per_epoch=5, params=PARAMS)
  updates, _ = tx.update(GRADS, tx.init(PARAMS), PARAMS)
  return updates


def test_multipliers_scale_each_group_and_zero_freezes():
  updates = _update(_config(lr_multipliers='model/head/=10,method/=0'))
  np.testing.assert_allclose(updates['model']['body']['kernel'], -0.1)  # default group: lr
  np.testing.assert_allclose(updates['model']['head']['kernel'], -1.0)  # x10
  np.testing.assert_array_equal(updates['method']['centers'], 0.0)  # frozen


def test_first_matching_pattern_wins_and_weight_decay_skips_frozen():
  updates = _update(_config(lr_multipliers='model/head/=0,model/=0.5', weight_decay=1.0))
  np.testing.assert_array_equal(updates['model']['head']['kernel'], 0.0)
  np.testing.assert_allclose(updates['model']['body']['kernel'], -0.5 * 0.1 * 2.0)  # (g + wd * p) * lr * 0.5
  np.testing.assert_allclose(updates['method']['centers'], -0.1 * 2.0)


def test_no_multipliers_is_the_plain_optimizer():
  plain = optax.sgd(0.1)
  expected, _ = plain.update(GRADS, plain.init(PARAMS), PARAMS)
  got = _update(_config())
  for a, b in zip(jax.tree.leaves(expected), jax.tree.leaves(got)):
    np.testing.assert_allclose(a, b)


@pytest.mark.parametrize(
  'spec, match',
  [
    ('model/head', 'cannot parse'),
    ('=3', 'cannot parse'),
    ('model/=x', 'cannot parse'),
    ('model/=-1', 'negative'),
    ('decoder/=2', 'match no parameter'),
  ],
)
def test_bad_specs_name_the_problem(spec, match):
  with pytest.raises(ValueError, match=match):
    optim.build(_config(lr_multipliers=spec), total_steps=10, steps_per_epoch=5, params=PARAMS)
