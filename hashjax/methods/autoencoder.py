"""Unsupervised hashing with a convolutional autoencoder and an annealed scaled tanh (Chowdhury, 2020).

The encoder's bottleneck z is squashed by h = tanh(b z), the decoder reconstructs the image from
h, and the loss is the mean squared error between the (normalised) image and its reconstruction.
The slope b rises during training, so tanh(b z) approaches sign(z) and the decoder learns to work
from (nearly) binary codes; codes at test time are sign(z).

The seed writes its activation as `2 / (1 + e^{-bx}) - 1` (misprinted with the `- 1` inside the
denominator, which would have a pole at x = 0 and is no squashing function). The intended
`2 / (1 + e^{-b'x}) - 1 = 2 sigmoid(b'x) - 1` equals tanh(b'x / 2) exactly
((1 - e^{-t}) / (1 + e^{-t}) = tanh(t / 2)), so it is tanh(b x) with b = b' / 2; equivalently
tanh(b x) = 2 sigmoid(2 b x) - 1. Here b is the tanh slope: a seed value b' is slope b'/2.

The slope follows `config.slope_schedule` of the step (`batch['step']`), all per step:
  constant:     b = slope_start throughout (no annealing);
  linear:       slope_start -> slope_end linearly over `slope_steps`, then slope_end;
  exponential:  geometric, slope_start * (slope_end / slope_start) ** t, t = step / slope_steps <= 1.
`slope_update_every` > 1 holds b fixed for that many steps (steps_per_epoch: raise b once an epoch,
as "increase b until the codes are binary" reads); `slope_steps` is in steps too, so an
annealing over E epochs is E * steps_per_epoch. Steps after `slope_steps` are the seed's
fine-tuning phase at the final slope, while the learning rate keeps decaying (configs/autoencoder.py).

The encoder can cancel any slope by shrinking z (b z is what the tanh sees), so a rising b alone
need not binarise the codes; `binary_fraction` (|h| > binary_threshold) shows whether it did, and
the model's `code_norm='batch_rms'` (hashjax/models/autoencoder.py) removes that freedom.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

SLOPE_SCHEDULES = ('constant', 'linear', 'exponential')


def validate(ctx) -> None:
  config = ctx.loss
  if config.slope_schedule not in SLOPE_SCHEDULES:
    raise ValueError(
      f'unknown loss.slope_schedule {config.slope_schedule!r}; valid names: {", ".join(SLOPE_SCHEDULES)}'
    )
  if config.slope_start <= 0 or config.slope_end <= 0:
    raise ValueError(
      f'loss.slope_start and loss.slope_end must be positive, got {config.slope_start} and {config.slope_end}'
    )
  if config.slope_steps <= 0 or config.slope_update_every <= 0:
    raise ValueError(
      f'loss.slope_steps and loss.slope_update_every must be positive, got '
      f'{config.slope_steps} and {config.slope_update_every}'
    )


def slope_at(step: jax.Array, config) -> jax.Array:
  """The tanh slope b at `step` (a traced int scalar is fine) under `config`'s slope schedule."""
  name = config.slope_schedule
  start, end = float(config.slope_start), float(config.slope_end)
  if name == 'constant':
    return jnp.asarray(start, jnp.float32)
  step = jnp.asarray(step, jnp.int32)
  held = (step // config.slope_update_every) * config.slope_update_every
  t = jnp.minimum(held.astype(jnp.float32) / config.slope_steps, 1.0)
  if name == 'linear':
    return start + (end - start) * t
  return start * jnp.power(end / start, t)


def binary_fraction(h: jax.Array, threshold: float = 0.99) -> jax.Array:
  """Fraction of code entries with |h| > threshold: 1.0 once the codes are binary."""
  return jnp.mean((jnp.abs(h) > threshold).astype(jnp.float32))


def loss_fn(params, batch, rng, *, forward, config):
  """MSE between the images and their reconstruction from tanh(b z): (params, batch, rng) -> (loss, metrics)."""
  images = batch['image']
  slope = slope_at(batch['step'], config)
  _, h, reconstruction = forward(params, images, train=True, rng=rng, reconstruct_slope=slope)
  mse = jnp.mean(jnp.square(reconstruction - images.astype(jnp.float32)))
  metrics = {
    'mse': mse,
    'slope': slope,
    'binary_fraction': binary_fraction(h, config.binary_threshold),
    'mean_abs_code': jnp.mean(jnp.abs(h)),
  }
  return mse, metrics


def to_codes(outputs: jax.Array) -> jax.Array:
  """The bottleneck z itself: its sign is the code (sign(z) == sign(tanh(b z)) for every b > 0)."""
  return outputs
