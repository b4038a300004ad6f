"""Optimizers and learning-rate schedules from config, through optax.

Weight decay is coupled (added to the gradient before momentum), as in Caffe and PyTorch's SGD,
which the reference implementations use.
"""

from __future__ import annotations

import optax

OPTIMIZERS = {
    'sgd': lambda lr, c: optax.sgd(lr, momentum=c.get('momentum') or None, nesterov=c.get('nesterov', False)),
    'adam': lambda lr, c: optax.adam(lr),
    'rmsprop': lambda lr, c: optax.rmsprop(lr),
}


def schedule(config, total_steps: int, steps_per_epoch: int) -> optax.Schedule:
  """`constant`, `cosine` (to 0 over the run), `linear` (to `end_lr`), or `step` (x`decay_factor`
  at each epoch in `decay_epochs`), all after `warmup_steps` of linear warm-up."""
  lr, warmup = config.lr, config.get('warmup_steps', 0)
  kinds = {
      'constant': lambda n: optax.constant_schedule(lr),
      'cosine': lambda n: optax.cosine_decay_schedule(lr, max(n, 1)),
      'linear': lambda n: optax.linear_schedule(lr, config.get('end_lr', 0.0), max(n, 1)),
      'step': lambda n: optax.piecewise_constant_schedule(
          lr, {int(e * steps_per_epoch) - warmup: config.get('decay_factor', 0.1)
               for e in config.get('decay_epochs', ())}),
  }
  name = config.get('schedule', 'constant')
  if name not in kinds:
    raise ValueError(f'unknown optimizer.schedule {name!r}; valid names: {", ".join(kinds)}')
  main = kinds[name](total_steps - warmup)
  if warmup:
    return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), main], [warmup])
  return main


def build(config, total_steps: int, steps_per_epoch: int) -> optax.GradientTransformation:
  if config.name not in OPTIMIZERS:
    raise ValueError(f'unknown optimizer {config.name!r}; valid names: {", ".join(OPTIMIZERS)}')
  lr = schedule(config, total_steps, steps_per_epoch)
  parts = []
  if config.get('grad_clip_norm'):
    parts.append(optax.clip_by_global_norm(config.grad_clip_norm))
  if config.get('weight_decay'):
    parts.append(optax.add_decayed_weights(config.weight_decay))
  parts.append(OPTIMIZERS[config.name](lr, config))
  return optax.chain(*parts)
