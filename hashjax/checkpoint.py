"""Checkpoints: the only module that talks to Orbax.

A checkpoint holds two items, `params` and `train` (optimizer state, step, rng), plus `meta` (the
settings a restored run must agree with). Orbax writes each step to a temporary folder and renames
it when complete, so a killed run never leaves a half-written checkpoint that looks finished.
Another run's parameters can be reused alone (`--config.init_from=DIR`).
"""

from __future__ import annotations

import os

import jax
import orbax.checkpoint as ocp


class CheckpointError(RuntimeError):
  """A checkpoint that cannot be used, with what to do about it."""


def _abstract(tree):
  return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)


class Checkpointer:
  """Saves every `every_steps` steps (and when forced), keeps the last `keep`."""

  def __init__(self, directory: str, every_steps: int, keep: int):
    self.directory = os.path.abspath(directory)
    self.manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(save_interval_steps=every_steps, max_to_keep=keep, create=True),
        item_names=('params', 'train', 'meta'))

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def save(self, step: int, state, meta: dict, *, force: bool = False) -> bool:
    train = {'opt_state': state.opt_state, 'step': state.step, 'rng': state.rng}
    return self.manager.save(step, args=ocp.args.Composite(
        params=ocp.args.StandardSave(state.params), train=ocp.args.StandardSave(train),
        meta=ocp.args.JsonSave(meta)), force=force)

  def restore(self, state, meta: dict):
    """Restores the latest checkpoint into the structure, shardings and dtypes of `state`."""
    step = self.latest_step()
    where = os.path.join(self.directory, str(step))
    try:
      saved_meta = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))['meta']
    except Exception as e:
      raise CheckpointError(f'checkpoint {where} is unreadable ({type(e).__name__}: {e}). It is left as it is: '
                            f'move it away to start afresh, or use another --workdir.') from e
    _check_compatible(saved_meta, meta, where)
    train = {'opt_state': state.opt_state, 'step': state.step, 'rng': state.rng}
    try:
      restored = self.manager.restore(step, args=ocp.args.Composite(
          params=ocp.args.StandardRestore(_abstract(state.params)),
          train=ocp.args.StandardRestore(_abstract(train))))
    except Exception as e:
      raise CheckpointError(f'checkpoint {where} is corrupt or does not match this model/optimizer '
                            f'({type(e).__name__}: {e}). It is left as it is: move it away to start afresh, '
                            f'or use another --workdir.') from e
    t = restored['train']
    return state.replace(params=restored['params'], opt_state=t['opt_state'], step=t['step'], rng=t['rng'])

  def wait(self):
    self.manager.wait_until_finished()

  def close(self):
    self.manager.close()


def _check_compatible(saved: dict, current: dict, where: str):
  diffs = {k: (saved.get(k), v) for k, v in current.items() if saved.get(k) != v}
  if diffs:
    listed = ', '.join(f'{k}: checkpoint has {a!r}, this run has {b!r}' for k, (a, b) in diffs.items())
    raise CheckpointError(f'checkpoint {where} was written by an incompatible run ({listed}). '
                          f'Use another --workdir, or pass the checkpoint\'s settings.')


def latest_step(directory: str) -> int | None:
  """The latest complete checkpoint's step in a workdir (or its checkpoints/ folder); None if none."""
  directory = os.path.abspath(directory)
  if os.path.isdir(os.path.join(directory, 'checkpoints')):
    directory = os.path.join(directory, 'checkpoints')
  if not os.path.isdir(directory):
    return None
  manager = ocp.CheckpointManager(directory, item_names=('params', 'train', 'meta'))
  try:
    return manager.latest_step()
  finally:
    manager.close()


def load_params(directory: str, params_like):
  """Parameters of the latest checkpoint in another run's workdir (or its checkpoints/ folder)."""
  directory = os.path.abspath(directory)
  if os.path.isdir(os.path.join(directory, 'checkpoints')):
    directory = os.path.join(directory, 'checkpoints')
  manager = ocp.CheckpointManager(directory, item_names=('params', 'train', 'meta'))
  step = manager.latest_step()
  if step is None:
    manager.close()
    raise CheckpointError(f'no checkpoint found in {directory}')
  restore = lambda like: manager.restore(step, args=ocp.args.Composite(
      params=ocp.args.StandardRestore(_abstract(like))))['params']
  try:
    return restore(params_like), step
  except Exception as e:  # pylint: disable=broad-except
    # Checkpoints written before the {'model', 'method'} split hold the network's parameters alone.
    if isinstance(params_like, dict) and set(params_like) == {'model', 'method'} and not params_like['method']:
      try:
        return {'model': restore(params_like['model']), 'method': {}}, step
      except Exception:  # pylint: disable=broad-except
        pass
    detail = str(e).strip().splitlines()[0][:300] if str(e).strip() else ''
    raise CheckpointError(f'checkpoint {directory}/{step} does not fit this model: its parameter tree '
                          f'differs ({type(e).__name__}: {detail}). Was it written with another '
                          f'model / bits / method?') from e
  finally:
    manager.close()


def save_weights(directory: str, weights: dict, meta: dict) -> None:
  """Writes a weights-only checkpoint (e.g. converted ImageNet weights): `weights` (a tree of arrays)
  and `meta` (JSON). Fails if `directory` exists, so converted weights are never overwritten."""
  directory = os.path.abspath(directory)
  if os.path.exists(directory):
    raise CheckpointError(f'{directory} already exists: remove it or choose another destination')
  checkpointer = ocp.Checkpointer(ocp.CompositeCheckpointHandler())
  checkpointer.save(directory, args=ocp.args.Composite(weights=ocp.args.StandardSave(weights),
                                                       meta=ocp.args.JsonSave(meta)))


def load_weights(directory: str) -> tuple[dict, dict]:
  """(weights as NumPy arrays, meta) of a `save_weights` checkpoint."""
  directory = os.path.abspath(directory)
  if not all(os.path.isdir(os.path.join(directory, item)) for item in ('weights', 'meta')):
    raise CheckpointError(f'pretrained: no weights checkpoint in {directory} (write one with '
                          f'`python -m hashjax.weights convert --arch ARCH --src FILE --dst {directory}`)')
  checkpointer = ocp.Checkpointer(ocp.CompositeCheckpointHandler())
  try:
    restored = checkpointer.restore(directory, args=ocp.args.Composite(
        weights=ocp.args.StandardRestore(), meta=ocp.args.JsonRestore()))
  except Exception as e:
    raise CheckpointError(f'pretrained: {directory} is unreadable ({type(e).__name__}: {e})') from e
  return restored['weights'], restored['meta']
