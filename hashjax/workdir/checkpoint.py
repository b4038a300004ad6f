"""Checkpoints: the only module that talks to Orbax.

A checkpoint holds two array items, `params` and `train` (optimizer state, step, rng), plus `meta`
(JSON): the whole config of the run that wrote it, and a CRC-32 of every saved array. Orbax writes
each step to a temporary folder and renames it when complete, so a killed run never leaves a
half-written checkpoint that looks finished.

Guarantees (tests/test_workdir_safety.py):
  * `save` refuses a state with a NaN or Inf anywhere in its parameters or optimizer state
    (`NonFiniteStateError`), so a checkpoint is always finite.
  * Every restore (`Checkpointer.restore`, `load_params`: training resume, `init_from`, evaluate,
    classify, retrieve) recomputes the checksums of what it read and fails naming the step and the
    array on a mismatch; a step is chosen on purpose with `step=` (`--config.checkpoint.restore_step`,
    `--step`). Nothing is deleted automatically.
  * Every failure (unreadable, truncated, another model's, a full disk while saving) is a
    `CheckpointError` with a one-line message.
Another run's parameters can be reused alone (`--config.init_from=DIR`).
"""

from __future__ import annotations

import os
import zlib

import jax
from jax.experimental import multihost_utils
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from hashjax.cli import errors

CheckpointError = errors.CheckpointError
ITEMS = ('params', 'train', 'meta')


class NonFiniteStateError(errors.NonFiniteError):
  """A state about to be saved holds NaN or Inf; `path` names the first such array."""

  def __init__(self, path: str):
    super().__init__(f'{path} holds NaN or Inf')
    self.path = path


def _abstract(tree):
  return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)


def _host(x) -> np.ndarray:
  """A host copy of a (possibly multi-process) array; the state is replicated, so one local copy."""
  if isinstance(x, jax.Array) and not x.is_fully_addressable:
    x = x.addressable_data(0) if x.is_fully_replicated else multihost_utils.process_allgather(x, tiled=True)
  return np.asarray(x)


def _host_leaves(tree) -> list[tuple[str, np.ndarray]]:
  flat, _ = jax.tree_util.tree_flatten_with_path(tree)
  return [(jax.tree_util.keystr(path, simple=True, separator='/'), _host(x)) for path, x in flat]


def _checksum(a: np.ndarray) -> str:
  return f'{a.dtype}{list(a.shape)}:crc32={zlib.crc32(np.ascontiguousarray(a).reshape(-1).view(np.uint8)):08x}'


def _first_non_finite(leaves) -> str | None:
  for path, a in leaves:
    if jnp.issubdtype(a.dtype, jnp.inexact) and not np.isfinite(a.astype(np.float32, copy=False)).all():
      return path
  return None


def _train_item(state) -> dict:
  """What the `train` item holds: the optimizer state, step, rng and (if any) the method's state
  (absent when empty, so checkpoints of methods without state keep their older layout)."""
  item = {'opt_state': state.opt_state, 'step': state.step, 'rng': state.rng}
  return {**item, 'method_state': state.method_state} if state.method_state else item


def _checkpoints_dir(directory: str) -> str:
  """A workdir's checkpoints/ folder (or `directory` itself if it is one)."""
  directory = os.path.abspath(directory)
  inner = os.path.join(directory, 'checkpoints')
  return inner if os.path.isdir(inner) else directory


def _reader(directory: str) -> ocp.CheckpointManager:
  """A manager for reading: with create=False it creates nothing (a mistyped path stays absent), and
  hashjax never saves or deletes through it. (Orbax's read_only=True logs a warning on every use.)"""
  return ocp.CheckpointManager(directory, item_names=ITEMS, options=ocp.CheckpointManagerOptions(create=False))


def _verify(leaves, saved: dict | None, item: str, where: str) -> None:
  """Fails unless `leaves` match the checksums saved with them (None: written before checksums
  existed, nothing to compare) and are finite."""
  for path, a in leaves if saved is not None else ():
    if path not in saved:
      raise CheckpointError(
        f'checkpoint {where} has no checksum for {item}/{path}: it was written by another model or optimizer'
      )
    if _checksum(a) != saved[path]:
      raise CheckpointError(
        f'checkpoint {where}: {item}/{path} fails its checksum (the file changed on disk '
        f'after it was written). Nothing was changed; restore an earlier step on purpose '
        f'with --config.checkpoint.restore_step=N (or --step N)'
      )
  bad = _first_non_finite(leaves)
  if bad is not None:
    raise CheckpointError(
      f'checkpoint {where}: {item}/{bad} holds NaN or Inf (written before hashjax checked '
      f'saved states); restore an earlier step with --config.checkpoint.restore_step=N'
    )


def _step_list(steps) -> str:
  return ', '.join(map(str, sorted(steps))) or 'none'


def _disk_problem(e: Exception) -> str | None:
  """'disk full' / 'permission denied' when Orbax's error says so (it raises ValueError with
  TensorStore's status text, or OSError), else None (a bug: re-raised as it is)."""
  text = str(e)
  if 'RESOURCE_EXHAUSTED' in text or 'No space left' in text or getattr(e, 'errno', None) in (28, 122):
    return 'the disk is full'
  if 'PERMISSION_DENIED' in text or isinstance(e, PermissionError):
    return 'permission denied'
  return None


class Checkpointer:
  """Saves every `every_steps` steps (and when forced), keeps the last `keep`."""

  def __init__(self, directory: str, every_steps: int, keep: int):
    self.directory = os.path.abspath(directory)
    self.every_steps = every_steps
    # cleanup_tmp_directories: a save that failed (a full disk) leaves its temporary folder; the
    # workdir's lock guarantees no other writer owns one, so the next run frees that space.
    self.manager = ocp.CheckpointManager(
      self.directory,
      options=ocp.CheckpointManagerOptions(
        save_interval_steps=every_steps, max_to_keep=keep, create=True, cleanup_tmp_directories=True
      ),
      item_names=ITEMS,
    )
    self._in_flight = None  # the step an asynchronous save is still writing

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def all_steps(self) -> list[int]:
    return sorted(self.manager.all_steps())

  def should_save(self, step: int) -> bool:
    """Every `every_steps` steps. (Not Orbax's default policy, which also saves the first step of a
    fresh run, a checkpoint taken before training has shown it is stable.)"""
    return step % self.every_steps == 0

  def save(self, step: int, state, meta: dict) -> None:
    """Saves `state` at `step` (asynchronously) with `meta` and the checksums of every array.
    Raises NonFiniteStateError, before writing anything, if the state holds NaN or Inf."""
    params, train = _host_leaves(state.params), _host_leaves(_train_item(state))
    for item, leaves in (('params', params), ('train', train)):
      bad = _first_non_finite(leaves)
      if bad is not None:
        raise NonFiniteStateError(f'{item}/{bad}')
    meta = dict(
      meta, checksums={'params': {p: _checksum(a) for p, a in params}, 'train': {p: _checksum(a) for p, a in train}}
    )
    self.wait()  # a failure of the previous save is reported as that step's
    try:
      self.manager.save(
        step,
        args=ocp.args.Composite(
          params=ocp.args.StandardSave(state.params),
          train=ocp.args.StandardSave(_train_item(state)),
          meta=ocp.args.JsonSave(meta),
        ),
        force=True,
      )
    except Exception as e:  # pylint: disable=broad-except
      self._raise_write_error(step, e)
    self._in_flight = step

  def wait(self) -> None:
    """Blocks until the last save is on disk; a failure becomes a CheckpointError."""
    try:
      self.manager.wait_until_finished()
    except Exception as e:  # pylint: disable=broad-except
      self._raise_write_error(self._in_flight, e)
    finally:
      self._in_flight = None

  def _raise_write_error(self, step, e: Exception):
    problem = _disk_problem(e)
    if problem is None:
      raise e
    self.manager.reload()
    saved = self.manager.all_steps()
    then = f'it resumes from step {max(saved)}, the latest complete checkpoint' if saved else 'it starts afresh'
    raise CheckpointError(
      f'saving checkpoint step {step} to {self.directory} failed: {problem} ({errors.first_line(e, 160)}). '
      f'Fix that and rerun the same command: {then}'
    ) from e

  def read_meta(self, step: int) -> dict:
    return read_meta(self.directory, step)

  def restore(self, state, step: int | None = None):
    """Restores `step` (default: the latest) into the structure, shardings and dtypes of `state`,
    verifying every array against the checksums saved with it."""
    step = self.latest_step() if step is None else step
    where = os.path.join(self.directory, str(step))
    meta = self.read_meta(step)
    try:
      restored = self.manager.restore(
        step,
        args=ocp.args.Composite(
          params=ocp.args.StandardRestore(_abstract(state.params)),
          train=ocp.args.StandardRestore(_abstract(_train_item(state))),
        ),
      )
    except Exception as e:  # pylint: disable=broad-except
      if 'config' not in meta and (state.method_state or state.params.get('method')):
        raise CheckpointError(
          f'checkpoint {where} was written by a hashjax older than method state (before '
          f'stop 32: DCWH/DSDH/CSQ kept it among the parameters): it cannot be resumed, but '
          f'evaluate, classify, retrieve and init_from still read it'
        ) from e
      raise CheckpointError(
        f'checkpoint {where} is corrupt or does not match this model/optimizer '
        f'({errors.first_line(e, 200)}). It is left as it is: restore another step with '
        f'--config.checkpoint.restore_step=N (steps: {_step_list(self.all_steps())}), or use '
        f'another --workdir'
      ) from e
    checksums = meta.get('checksums') or {}
    _verify(_host_leaves(restored['params']), checksums.get('params'), 'params', where)
    _verify(_host_leaves(restored['train']), checksums.get('train'), 'train', where)
    t = restored['train']
    return state.replace(
      params=restored['params'],
      opt_state=t['opt_state'],
      step=t['step'],
      rng=t['rng'],
      method_state=t.get('method_state', {}),
    )

  def close(self):
    self.manager.close()


def steps(directory: str) -> list[int]:
  """The complete checkpoints' steps in a workdir (or its checkpoints/ folder); [] if none."""
  directory = _checkpoints_dir(directory)
  if not os.path.isdir(directory):
    return []
  manager = _reader(directory)
  try:
    return sorted(manager.all_steps())
  finally:
    manager.close()


def latest_step(directory: str) -> int | None:
  """The latest complete checkpoint's step in a workdir (or its checkpoints/ folder); None if none."""
  found = steps(directory)
  return found[-1] if found else None


def read_meta(directory: str, step: int) -> dict:
  """The JSON `meta` saved with `step` (config, checksums) in a workdir or checkpoints/ folder."""
  directory = _checkpoints_dir(directory)
  manager = _reader(directory)
  try:
    return manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))['meta'] or {}
  except Exception as e:  # pylint: disable=broad-except
    raise CheckpointError(
      f'checkpoint {os.path.join(directory, str(step))} is unreadable '
      f'({errors.first_line(e, 200)}). It is left as it is: restore another step with '
      f'--config.checkpoint.restore_step=N (steps: {_step_list(steps(directory))}), or use '
      f'another --workdir'
    ) from e
  finally:
    manager.close()


def load_params(directory: str, params_like, step: int | None = None):
  """(parameters, step) of another run's checkpoint (default: its latest), verified against its
  checksums: for `init_from`, evaluation, classification and retrieval."""
  directory = _checkpoints_dir(directory)
  if not os.path.isdir(directory):
    raise CheckpointError(f'no checkpoint found in {directory}: not a directory (a mistyped path?)')
  available = steps(directory)
  if not available:
    raise CheckpointError(f'no checkpoint found in {directory}')
  step = available[-1] if step is None else step
  if step not in available:
    raise CheckpointError(f'no checkpoint of step {step} in {directory}; steps: {_step_list(available)}')
  where = os.path.join(directory, str(step))
  checksums = (read_meta(directory, step).get('checksums') or {}).get('params')
  manager = _reader(directory)
  try:
    try:
      params = manager.restore(step, args=ocp.args.Composite(params=ocp.args.StandardRestore(_abstract(params_like))))
      params, legacy = params['params'], False
    except Exception as e:  # pylint: disable=broad-except
      # Older layouts: the network's parameters alone (before the {'model', 'method'} split), or method
      # state among the parameters (DCWH's centers, DSDH's B and W before stop 32). Read as saved.
      try:
        params, legacy = (
          manager.restore(step, args=ocp.args.Composite(params=ocp.args.StandardRestore()))['params'],
          True,
        )
      except Exception:  # pylint: disable=broad-except
        params = None
      error = e
  finally:
    manager.close()
  if params is None:
    raise CheckpointError(
      f'checkpoint {where} does not fit this model: its parameter tree differs or it is '
      f'corrupt ({errors.first_line(error, 200)}). Was it written with another model / bits / '
      f'method?'
    ) from error
  _verify(_host_leaves(params), checksums, 'params', where)
  if legacy:
    params = _from_legacy_layout(params, params_like, where, error)
  return params, step


def _from_legacy_layout(saved: dict, params_like, where: str, error: Exception):
  """`saved` (host arrays, an older layout) in the structure and shardings of `params_like`: the
  network's parameters, and of the method's only those `params_like` still has."""
  model = saved.get('model', saved) if isinstance(saved, dict) else saved
  method = (
    {k: v for k, v in (saved.get('method') or {}).items() if k in params_like['method']}
    if isinstance(saved, dict) and 'model' in saved
    else {}
  )
  tree = {'model': model, 'method': method}
  if jax.tree.structure(tree) != jax.tree.structure(params_like) or any(
    np.shape(a) != b.shape for a, b in zip(jax.tree.leaves(tree), jax.tree.leaves(params_like))
  ):
    raise CheckpointError(
      f'checkpoint {where} does not fit this model: its parameter tree differs or it is '
      f'corrupt ({errors.first_line(error, 200)}). Was it written with another model / bits / '
      f'method?'
    ) from error
  return jax.tree.map(lambda a, like: jax.device_put(np.asarray(a, like.dtype), like.sharding), tree, params_like)


def save_weights(directory: str, weights: dict, meta: dict) -> None:
  """Writes a weights-only checkpoint (e.g. converted ImageNet weights): `weights` (a tree of arrays)
  and `meta` (JSON). Fails if `directory` exists, so converted weights are never overwritten."""
  directory = os.path.abspath(directory)
  if os.path.exists(directory):
    raise CheckpointError(f'{directory} already exists: remove it or choose another destination')
  checkpointer = ocp.Checkpointer(ocp.CompositeCheckpointHandler())
  meta = dict(meta, checksums={p: _checksum(a) for p, a in _host_leaves(weights)})
  checkpointer.save(
    directory, args=ocp.args.Composite(weights=ocp.args.StandardSave(weights), meta=ocp.args.JsonSave(meta))
  )


def load_weights(directory: str) -> tuple[dict, dict]:
  """(weights as NumPy arrays, meta) of a `save_weights` checkpoint, verified against its checksums."""
  directory = os.path.abspath(directory)
  if not all(os.path.isdir(os.path.join(directory, item)) for item in ('weights', 'meta')):
    raise CheckpointError(
      f'pretrained: no weights checkpoint in {directory} (write one with '
      f'`python -m hashjax.weights convert --arch ARCH --src FILE --dst {directory}`)'
    )
  checkpointer = ocp.Checkpointer(ocp.CompositeCheckpointHandler())
  try:
    restored = checkpointer.restore(
      directory, args=ocp.args.Composite(weights=ocp.args.StandardRestore(), meta=ocp.args.JsonRestore())
    )
  except Exception as e:  # pylint: disable=broad-except
    raise CheckpointError(f'pretrained: {directory} is unreadable ({errors.first_line(e, 200)})') from e
  meta = restored['meta']
  _verify(_host_leaves(restored['weights']), meta.get('checksums'), 'weights', directory)
  return restored['weights'], meta
