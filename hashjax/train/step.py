"""The training state and the one jitted, sharded train step.

`make_train_step` binds a method's pure loss to the network and returns
`step(state, batch) -> (state, metrics)`, compiled once with the state donated. The step's
randomness is `fold_in(state.rng, state.step)`, so a resumed run draws the same numbers.
"""

from __future__ import annotations

import functools

from flax import struct
import jax
import jax.numpy as jnp
import optax

from hashjax.data import augment
from hashjax.data import feature_views


@struct.dataclass
class TrainState:
  step: jax.Array
  params: dict  # {'model': the network, 'method': the method's trained parameters}
  opt_state: optax.OptState
  rng: jax.Array  # raw uint32 key data (Orbax-friendly); wrap with jax.random.wrap_key_data
  # What the method updates other than by gradient descent (hashjax/methods/__init__.py): never
  # differentiated, never seen by the optimizer; the loss reads it as batch['method_state'].
  method_state: dict = struct.field(default_factory=dict)


def create_state(
  params, tx: optax.GradientTransformation | None, seed: int, method_state: dict | None = None
) -> TrainState:
  """A fresh state; tx None (evaluation only) leaves no optimizer state."""
  return TrainState(
    step=jnp.zeros((), jnp.int32),
    params=params,
    opt_state=() if tx is None else tx.init(params),
    rng=jax.random.key_data(jax.random.key(seed)),
    method_state=method_state or {},
  )


def make_preprocess(mean, std, image_size: int | None, augmentation: str):
  """uint8 batch + key -> normalised float batch (augmented when `train`)."""
  aug = augment.get(augmentation)
  mean, std = jnp.asarray(mean, jnp.float32), jnp.asarray(std, jnp.float32)

  def preprocess(images, rng=None, *, train: bool):
    x = augment.normalize(images, mean, std)
    x = augment.resize(x, image_size)
    return aug(x, rng) if train else x

  return preprocess


def make_feature_preprocess(mean, std, augmentation: str, views_config):
  """float (B, D) feature batch + key -> normalised float batch (a random view when `train` and
  `augmentation` is 'feature_views'; hashjax/data/feature_views.py). Same signature as
  `make_preprocess`'s function."""
  mean, std = jnp.asarray(mean, jnp.float32), jnp.asarray(std, jnp.float32)
  strengths = dict(dropout=float(views_config.dropout), noise=float(views_config.noise), mix=float(views_config.mix))

  def preprocess(features, rng=None, *, train: bool):
    x = feature_views.normalize(features, mean, std)
    if train and augmentation == 'feature_views':
      return feature_views.views(x, rng, **strengths)
    return x

  return preprocess


def make_train_step(
  loss_fn, forward, method_config, tx, preprocess, state_sharding, batch_sharding, metrics_sharding, num_views: int = 1
):
  """Returns the jitted `step(state, batch) -> (state, metrics)`.

  The loss sees `batch['image']` (one augmented view) or, when `num_views` > 1, `batch['views']`
  (a tuple of independently augmented views of the same images), `batch['step']`, the step being
  taken (for schedules inside a loss), and `batch['method_state']`; gradients are taken with
  respect to `params` alone.
  """
  objective = functools.partial(loss_fn, forward=forward, config=method_config)

  def step(state: TrainState, batch):
    rng = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)
    aug_rng, loss_rng = jax.random.split(rng)
    batch = dict(batch)
    raw = batch.pop('image')
    if num_views == 1:
      batch['image'] = preprocess(raw, aug_rng, train=True)
    else:
      batch['views'] = tuple(preprocess(raw, k, train=True) for k in jax.random.split(aug_rng, num_views))
    batch['step'] = state.step
    batch['method_state'] = state.method_state
    (loss, metrics), grads = jax.value_and_grad(objective, has_aux=True)(state.params, batch, loss_rng)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = dict(metrics, loss=loss, grad_norm=optax.tree.norm(grads))
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics

  return jax.jit(
    step,
    donate_argnums=(0,),
    in_shardings=(state_sharding, batch_sharding),
    out_shardings=(state_sharding, metrics_sharding),
  )
