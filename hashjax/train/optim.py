"""Optimizers, learning-rate schedules and per-parameter-group learning rates, from config, through optax.

Weight decay is coupled (added to the gradient before momentum), as in Caffe and PyTorch's SGD,
which the reference implementations use.

`optimizer.lr_multipliers` scales the learning rate of parameter groups: a string of
`pattern=multiplier` pairs, e.g. 'model/head/=10,method/=0.5'. Each parameter's path ('model/...'
for the network, 'method/...' for a method's own parameters such as IDCWH's class centers) takes
the multiplier of the first pattern that `re.match`es it (1 if none does); multiplier 0 freezes the
group (no update, no weight decay). The papers train new layers 10x faster than pretrained ones.
"""

from __future__ import annotations

import re

import jax
import optax

OPTIMIZERS = {
  'sgd': lambda lr, c: optax.sgd(lr, momentum=c.momentum or None, nesterov=c.nesterov),
  'adam': lambda lr, c: optax.adam(lr),
  'rmsprop': lambda lr, c: optax.rmsprop(lr),
}


def schedule(config, total_steps: int, steps_per_epoch: int) -> optax.Schedule:
  """`constant`, `cosine` (to 0 over the run), `linear` (to `end_lr`), or `step` (x`decay_factor`
  at each epoch in `decay_epochs`), all after `warmup_steps` of linear warm-up."""
  lr, warmup = config.lr, config.warmup_steps
  kinds = {
    'constant': lambda n: optax.constant_schedule(lr),
    'cosine': lambda n: optax.cosine_decay_schedule(lr, max(n, 1)),
    'linear': lambda n: optax.linear_schedule(lr, config.end_lr, max(n, 1)),
    'step': lambda n: optax.piecewise_constant_schedule(
      lr, {int(e * steps_per_epoch) - warmup: config.decay_factor for e in config.decay_epochs}
    ),
  }
  name = config.schedule
  if name not in kinds:
    raise ValueError(f'unknown optimizer.schedule {name!r}; valid names: {", ".join(kinds)}')
  main = kinds[name](total_steps - warmup)
  if warmup:
    return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), main], [warmup])
  return main


def parse_lr_multipliers(spec: str) -> list[tuple[str, float]]:
  """'model/head/=10,method/=0' -> [('model/head/', 10.0), ('method/', 0.0)], with clear errors."""
  out = []
  for part in filter(None, (p.strip() for p in (spec or '').split(','))):
    pattern, sep, value = part.rpartition('=')
    try:
      if not sep or not pattern:
        raise ValueError
      multiplier = float(value)
      re.compile(pattern)
    except (ValueError, re.error):
      raise ValueError(
        f'optimizer.lr_multipliers: cannot parse {part!r}; write pattern=multiplier pairs '
        f"separated by commas, e.g. 'model/head/=10,method/=0.5'"
      ) from None
    if multiplier < 0:
      raise ValueError(f'optimizer.lr_multipliers: {part!r} is negative; use 0 to freeze a group')
    out.append((pattern, multiplier))
  return out


def param_paths(params) -> list[str]:
  """'/'-joined key paths of the parameter leaves ('model/head/kernel', 'method/centers')."""
  return [
    jax.tree_util.keystr(path, simple=True, separator='/')
    for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]
  ]


def group_labels(params, multipliers: list[tuple[str, float]]):
  """The pytree of group indices (into `multipliers`; len(multipliers) = the default group)."""

  def label(path):
    return next((i for i, (pattern, _) in enumerate(multipliers) if re.match(pattern, path)), len(multipliers))

  leaves, treedef = jax.tree.flatten(params)
  return jax.tree.unflatten(treedef, [label(p) for p in param_paths(params)])


def _group(config, lr: optax.Schedule, multiplier: float) -> optax.GradientTransformation:
  if multiplier == 0:
    return optax.set_to_zero()
  parts = [optax.add_decayed_weights(config.weight_decay)] if config.weight_decay else []
  scaled = lr if multiplier == 1 else (lambda step: multiplier * lr(step))
  return optax.chain(*parts, OPTIMIZERS[config.name](scaled, config))


def build(config, total_steps: int, steps_per_epoch: int, params=None) -> optax.GradientTransformation:
  """The optimizer; `params` (their structure) is needed only when `lr_multipliers` is set."""
  if config.name not in OPTIMIZERS:
    raise ValueError(f'unknown optimizer {config.name!r}; valid names: {", ".join(OPTIMIZERS)}')
  lr = schedule(config, total_steps, steps_per_epoch)
  clip = [optax.clip_by_global_norm(config.grad_clip_norm)] if config.grad_clip_norm else []
  multipliers = parse_lr_multipliers(config.lr_multipliers)
  if not multipliers:
    return optax.chain(*clip, _group(config, lr, 1.0))
  if params is None:
    raise ValueError('optimizer.lr_multipliers needs the parameters to group them')
  labels = group_labels(params, multipliers)
  used = set(jax.tree.leaves(labels))
  unused = [pattern for i, (pattern, _) in enumerate(multipliers) if i not in used]
  if unused:
    paths = param_paths(params)
    raise ValueError(
      f'optimizer.lr_multipliers: pattern(s) {unused} match no parameter (or an earlier '
      f'pattern took them); parameter paths look like {paths[:3] + paths[-2:]}'
    )
  groups = {i: _group(config, lr, m) for i, (_, m) in enumerate(multipliers)}
  groups[len(multipliers)] = _group(config, lr, 1.0)
  return optax.chain(*clip, optax.multi_transform(groups, labels))
