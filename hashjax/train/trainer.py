"""Training and evaluation loop (a library: no flags; `main.py` and the tests call it).

    train_and_evaluate(config, workdir) -> final metrics

Builds data, mesh, model and optimizer from the config, resumes from the workdir's latest
checkpoint if there is one, trains with one jitted sharded step, evaluates retrieval
periodically and at the end, checkpoints, and writes metrics.
"""

from __future__ import annotations

from collections.abc import Callable
import contextlib
import dataclasses
import functools
import math
import os
import signal
import time

import jax
from jax.experimental import multihost_utils
import ml_collections
import numpy as np

from hashjax import baselines
from hashjax import methods
from hashjax import models
from hashjax.baselines import run as baseline_run
from hashjax.cli import errors
from hashjax.config import resume as config_resume
from hashjax.config import validate as config_validate
from hashjax.data import feature_views
from hashjax.data import lazy_images
from hashjax.data import pipeline
from hashjax.data import protocols
from hashjax.data import sources
from hashjax.data import streaming
from hashjax.eval import evaluator
from hashjax.eval import plots
from hashjax.parallel import sharding
from hashjax.train import metric_writer
from hashjax.train import optim
from hashjax.train import step as train_step_lib
from hashjax.workdir import checkpoint as checkpoint_lib
from hashjax.workdir import lock as workdir_lock
from hashjax.workdir import run_files

# Fault injection for tests: 'STEP:SIGNAL[:PROCESS]' (e.g. '25:SIGKILL', '3:SIGTERM:1') makes the run
# (only process PROCESS, if given) send itself SIGNAL right after STEP, so kill / preemption tests hit
# a known point instead of racing the loop.
_FAULT = os.environ.get('HASHJAX_FAULT_SIGNAL_AT_STEP', '').split(':')
_FAULT_STEP, _FAULT_SIGNAL = (int(_FAULT[0]), signal.Signals[_FAULT[1]]) if _FAULT[0] else (0, None)
_FAULT_PROCESS = int(_FAULT[2]) if len(_FAULT) > 2 else None


def load_protocol(config) -> protocols.Protocol:
  reads = config.dataset.reads
  lazy = reads == 'per_process' or (reads == 'auto' and jax.process_count() > 1)
  source = sources.load(
    config.dataset.name, config.dataset.data_dir or None, lazy, **sources.config_options(config.dataset)
  )
  return protocols.build(
    source, config.dataset.protocol, seed=config.dataset.split_seed, **dict(config.dataset.protocol_args)
  )


def image_stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Per-channel mean and std in [0, 1] units, from (a sample of) the training images."""
  sample = images[:: max(1, len(images) // 10000)].astype(np.float32) / 255.0
  return sample.mean(axis=(0, 1, 2)), sample.std(axis=(0, 1, 2)) + 1e-6


FEATURE_STATS_ROWS = 65536  # at most this many training rows (evenly spaced) give the feature statistics


def feature_stats(protocol: protocols.Protocol) -> tuple[np.ndarray, np.ndarray]:
  """Per-dimension mean and std (float32, (D,)) of the training feature vectors, from at most
  FEATURE_STATS_ROWS of them evenly spaced over the training set (every row below that)."""
  train = protocol.train[:: max(1, -(-len(protocol.train) // FEATURE_STATS_ROWS))]
  rows = np.asarray(protocol.images[np.sort(train)], np.float64)
  return rows.mean(axis=0).astype(np.float32), (rows.std(axis=0) + 1e-6).astype(np.float32)


def train_batches(config, protocol: protocols.Protocol, extras=None) -> pipeline.TrainBatches:
  """The training batches of a run: `build` trains on them, `python -m hashjax.data.throughput`
  times them, so both read the input the same way."""
  return pipeline.TrainBatches(
    protocol.images,
    protocol.labels,
    protocol.train,
    config.batch_size,
    seed=config.seed,
    extras=extras,
    skip_unreadable=config.dataset.skip_unreadable,
  )


def normalization(name: str, protocol: protocols.Protocol) -> tuple[np.ndarray, np.ndarray]:
  """Per-channel (mean, std): the training images' own ('dataset') or ImageNet's ('imagenet', what
  pretrained backbones expect; RGB only). Feature vectors: per-dimension (mean, std) of the
  training rows ('dataset': standardisation, `feature_stats`) or (0, 1) ('none': as stored);
  hashjax/data/feature_views.py."""
  if protocol.is_features:
    if name not in feature_views.NORMALIZATIONS:
      raise ValueError(
        f'normalize={name!r} is for images; feature vectors take {" or ".join(feature_views.NORMALIZATIONS)} '
        f'(dataset: per-dimension standardisation)'
      )
    if name == 'dataset':
      return feature_stats(protocol)
    width = protocol.images.shape[1]
    return np.zeros(width, np.float32), np.ones(width, np.float32)
  if name == 'dataset':
    return image_stats(lazy_images.take(protocol.images, protocol.train))
  if name == 'imagenet':
    if protocol.images.shape[-1] != 3:
      raise ValueError(
        f'normalize=imagenet needs RGB images; this dataset has {protocol.images.shape[-1]} '
        f'channel(s): use normalize=dataset'
      )
    return np.asarray(models.backbones.IMAGENET_MEAN), np.asarray(models.backbones.IMAGENET_STD)
  raise ValueError(f'unknown normalize {name!r}; valid names: dataset, imagenet (none: feature vectors only)')


class _Preemption:
  """Turns SIGTERM into a decision the loop polls, so the run can checkpoint and exit cleanly.

  A Python SIGTERM handler sets a flag. With several processes a SIGTERM may reach only some of
  them while a checkpoint is a collective, so at agreed steps every process all-gathers the flags
  and all stop at the same step if any was told. (JAX's own preemption service agrees on a step
  asynchronously; with Orbax calling it as well, processes were seen to disagree on the step.)
  """

  def __init__(self):
    self._requested = False
    self._previous = None
    self._multiprocess = jax.process_count() > 1

  def __enter__(self):
    try:
      self._previous = signal.signal(signal.SIGTERM, self._handler)
    except ValueError:  # not the main thread (e.g. some test runners): no handler
      self._previous = None
    return self

  def _handler(self, signum, frame):
    del signum, frame
    self._requested = True

  def stop_after(self, step_is_agreed: bool) -> bool:
    """Whether to checkpoint after this step and exit. With several processes only steps where
    `step_is_agreed` (the same on every process) decide: the all-gather is a host sync."""
    if not self._multiprocess:
      return self._requested
    if not step_is_agreed:
      return False
    return bool(np.any(multihost_utils.process_allgather(np.asarray(self._requested))))

  def arrived_late(self) -> bool:
    """One process: a SIGTERM that came after this step's `stop_after` (stop now all the same)."""
    return not self._multiprocess and self._requested

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)


def _non_finite_error(step: int, what: str, last_ckpt: int | None) -> errors.NonFiniteError:
  if last_ckpt is None:
    where = 'No checkpoint was written; rerun with a lower --config.optimizer.lr'
  else:
    where = (
      f'Nothing was saved after step {last_ckpt}, the last checkpoint (finite). To go on from it with a '
      f'lower learning rate, rerun with --config.optimizer.lr=... '
      f'--config.checkpoint.allow_changes=optimizer.lr'
    )
  return errors.NonFiniteError(
    f'training diverged at step {step}: {what}. {where}; or add --config.optimizer.grad_clip_norm, or check the data'
  )


def _check_finite(step: int, metrics: dict, last_ckpt: int | None):
  bad = {k: v for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v)}
  if bad:
    raise _non_finite_error(step, f'non-finite training metrics {bad}', last_ckpt)


@dataclasses.dataclass
class Run:
  """Everything a training run is built from; `build(config)` makes it, the loop and tests use it."""

  config: ml_collections.ConfigDict
  protocol: protocols.Protocol
  mesh: jax.sharding.Mesh
  batches: pipeline.TrainBatches
  state: train_step_lib.TrainState
  step_fn: Callable
  encode: Callable
  total_steps: int
  data_sharding: jax.sharding.NamedSharding
  # state -> state: the method's periodic refresh (see Method.refresh), called before every step
  # that is a positive multiple of `refresh_every_steps`; None for most methods.
  refresh: Callable | None = None
  refresh_every_steps: int = 0
  # The step of `config.init_from`'s checkpoint when `state` starts from its parameters, else None.
  init_from_step: int | None = None
  ctx: methods.Context | None = None  # what the method's hooks saw

  def evaluate_and_log(self, params, step: int, writer) -> dict:
    """Evaluates, writes the metrics (prefix 'eval') and the PR curve image to the metric writer."""
    metrics, pr = evaluator.evaluate(
      self.encode, params, self.protocol, self.config, self.data_sharding, with_pr_curve=True
    )
    if writer.enabled:  # process 0 writes
      writer.image(
        step,
        'eval/pr_curve',
        plots.pr_curve(
          pr['precision'], pr['recall'], None, f'{self.config.method} {self.config.bits} bits, step {step}'
        ),
      )
    return writer.write(step, metrics, prefix='eval')


def build(config, protocol: protocols.Protocol | None = None, *, for_training: bool = True) -> Run:
  """The run of `config`. for_training=False (evaluating or encoding a finished run) skips what only
  training needs: the optimizer, the method's batch extras (e.g. CIMON's global graph, minutes to
  build) and its periodic refresh."""
  config_validate.validate(config)
  method = methods.get(config.method)
  protocol = protocol or load_protocol(config)
  ctx = methods.Context(config, protocol)
  if method.validate is not None:
    method.validate(ctx)
  mesh = sharding.make_mesh(config.num_devices or None)
  sharding.check_batch_size(config.batch_size, mesh)
  data_sh, repl = sharding.data_sharding(mesh), sharding.replicated(mesh)

  mean, std = normalization(config.normalize, protocol)
  size = config.image_size or None
  if protocol.is_features:  # (D,): the models that take vectors (config/validate.py)
    image_shape = protocol.images.shape[1:]
  else:
    h, w, c = protocol.images.shape[1:]
    image_shape = (size, size, c) if size else (h, w, c)
  model_key, method_key = jax.random.split(jax.random.key(config.seed))
  graphdef, model_params = models.build(
    config.model, config.bits, image_shape, model_key, num_classes=protocol.num_classes
  )
  params = {
    'model': model_params,
    'method': method.init_params(ctx, method_key) if method.init_params is not None else {},
  }
  method_state = method.init_state(ctx, method_key) if method.init_state is not None else {}
  init_step = None
  if for_training and config.init_from:
    # Before the batch extras: CIMON's global graph comes from the features of these parameters.
    params, init_step = checkpoint_lib.load_params(config.init_from, params)
  network = models.make_forward(graphdef)
  forward = lambda params, images, **kwargs: network(params['model'], images, **kwargs)
  if protocol.is_features:
    preprocess = train_step_lib.make_feature_preprocess(mean, std, config.augment, config.feature_views)
  else:
    preprocess = train_step_lib.make_preprocess(mean, std, size, config.augment)
  ctx = dataclasses.replace(ctx, forward=forward, preprocess=preprocess, params_sharding=repl, batch_sharding=data_sh)

  # Hook: a method may attach host-side data to each batch (CIMON graph=global: its graph's blocks).
  extras = method.batch_extras(ctx, params) if method.batch_extras is not None and for_training else None
  batches = train_batches(config, protocol, extras)
  total_steps = config.num_steps or config.num_epochs * batches.steps_per_epoch
  # Evaluation needs no optimizer (and an old run's lr_multipliers may name groups that moved).
  tx = optim.build(config.optimizer, total_steps, batches.steps_per_epoch, params) if for_training else None
  state = jax.device_put(train_step_lib.create_state(params, tx, config.seed, method_state), repl)
  state_sh = jax.tree.map(lambda _: repl, state)
  step_fn = (
    train_step_lib.make_train_step(
      method.loss_fn, forward, config.loss, tx, preprocess, state_sh, data_sh, repl, method.num_views
    )
    if for_training
    else None
  )
  encode = evaluator.make_encoder(forward, preprocess, method.to_codes, repl, data_sh)
  refresh, refresh_every = None, 0
  if method.refresh is not None and config.loss.refresh_epochs and for_training:
    outputs = evaluator.make_encoder(forward, preprocess, lambda out: out, repl, data_sh)
    refresh = _make_refresh(method.refresh, ctx, outputs, mesh)
    refresh_every = max(1, round(config.loss.refresh_epochs * batches.steps_per_epoch))
  return Run(
    config,
    protocol,
    mesh,
    batches,
    state,
    step_fn,
    encode,
    total_steps,
    data_sh,
    refresh,
    refresh_every,
    init_step,
    ctx,
  )


def _make_refresh(refresh_fn, ctx, outputs, mesh):
  """state -> state with the method's state recomputed, by the jitted `refresh_fn`, from the network's
  outputs on the training set (eval mode), as DCWH recomputes its class centers every 2 epochs.

  The outputs are gathered on the host (every process gets them all), then laid out over the mesh
  by rows, padded to a multiple of the device count (mask 0 on the padding), so the refresh's
  reductions run sharded.
  """
  protocol, data_sh, repl = ctx.protocol, ctx.batch_sharding, ctx.params_sharding
  labels = protocol.labels[protocol.train]
  n = len(labels)
  padded = -(-n // mesh.size) * mesh.size

  def rows(host: np.ndarray) -> jax.Array:
    host = np.concatenate([host, np.zeros((padded - n,) + host.shape[1:], host.dtype)])
    return jax.make_array_from_callback(host.shape, data_sh, lambda index: host[index])

  mask, labels = rows(np.ones(n, np.float32)), rows(labels)
  step = jax.jit(functools.partial(refresh_fn, ctx), in_shardings=(data_sh, data_sh, data_sh, repl), out_shardings=repl)

  def refresh(state):
    train_out = evaluator.encode_set(
      outputs,
      state.params,
      protocol.images,
      protocol.train,
      ctx.config.eval.batch_size,
      data_sh,
      ctx.config.dataset.workers,
    )
    return state.replace(method_state=step(rows(train_out.astype(np.float32)), labels, mask, state.method_state))

  return refresh


@contextlib.contextmanager
def _hold_workdir(workdir: str, force: bool):
  """Holds the workdir's lock (process 0 takes it; every process stops if it cannot); yields the
  note on a dead run's lock taken over, if any."""
  lock, refusal = None, ''
  if jax.process_index() == 0:
    try:
      lock = workdir_lock.WorkdirLock(workdir, force=force).acquire()
    except errors.WorkdirInUseError as e:
      refusal = str(e)
  if jax.process_count() > 1 and bool(multihost_utils.broadcast_one_to_all(np.int32(bool(refusal)))):
    refusal = refusal or f'workdir {workdir} is in use by another run (process 0 found its lock)'
  if refusal:
    raise errors.WorkdirInUseError(refusal)
  try:
    yield lock.note if lock is not None else None
  finally:
    if lock is not None:
      lock.release()


@dataclasses.dataclass(frozen=True)
class ResumePoint:
  """The checkpoint a run continues from, and the config keys it changes (all allowed)."""

  step: int
  later_steps: tuple[int, ...]  # checkpoints after `step` (restore_step chose an earlier one)
  changes: dict


def resume_point(config, workdir: str) -> ResumePoint | None:
  """The checkpoint `config` would resume from in `workdir` (None: a fresh start), checked before
  anything is built or written: it must be a checkpoint of the same run, i.e. differ from `config`
  in config_resume.RESUMABLE_KEYS and `checkpoint.allow_changes` only."""
  steps = checkpoint_lib.steps(os.path.join(workdir, 'checkpoints'))
  if not steps:
    return None
  step = config.checkpoint.restore_step or steps[-1]
  if step not in steps:
    raise checkpoint_lib.CheckpointError(
      f'checkpoint.restore_step={step}: no such checkpoint in {workdir}; steps: {", ".join(map(str, steps))}'
    )
  meta = checkpoint_lib.read_meta(workdir, step)
  # Checkpoints before hashjax recorded the whole config: the workdir's config.json, else the keys they kept.
  saved = (
    meta.get('config')
    or config_resume.flatten(run_files.read_json(workdir, 'config.json') or {})
    or {'method': meta.get('method'), 'model.name': meta.get('model'), 'bits': meta.get('bits')}
  )
  current = config_resume.flat_config(config)
  changes = config_resume.differences(
    saved, {k: current.get(k, config_resume.ABSENT) for k in saved} if 'config' not in meta else current
  )
  conflicts = config_resume.resume_conflicts(changes, config.checkpoint.allow_changes)
  if conflicts:
    structural = [k for k in conflicts if k in ('method', 'bits') or k.startswith('model.')]
    fix = (
      ''
      if structural
      else f', or continue it with the new values from step {step} on purpose: '
      f'--config.checkpoint.allow_changes={",".join(conflicts)}'
    )
    raise errors.ConfigMismatchError(
      f'{workdir} holds checkpoint step {step} of a run with other settings '
      f'({config_resume.format_differences(conflicts)}); nothing was changed. Resume it with its settings or use '
      f'another --workdir{fix}'
    )
  return ResumePoint(step, tuple(s for s in steps if s > step), changes)


def _finished(workdir: str, point: ResumePoint | None) -> dict | None:
  """final_metrics.json of a run that already finished with exactly this config, else None."""
  final = run_files.read_json(workdir, 'final_metrics.json')
  if point is None or final is None or point.later_steps or point.changes:
    return None
  return final if final.get('step') == point.step else None


def train_and_evaluate(config, workdir: str, *, force_unlock: bool = False) -> dict:
  """Trains (resuming from the workdir if it holds a checkpoint of this run), evaluates, returns
  the final metrics. Holds the workdir's lock throughout (`force_unlock`: take over a lock left
  on another host)."""
  config_validate.validate(config)
  with _hold_workdir(workdir, force_unlock) as lock_note:
    if config.method in baselines.BASELINES:  # no network, no training loop
      return baseline_run.fit_and_evaluate(config, load_protocol(config), workdir)
    return _train_and_evaluate(config, workdir, lock_note)


def _train_and_evaluate(config, workdir: str, lock_note: str | None) -> dict:
  t_start = time.time()
  point = resume_point(config, workdir)
  final = _finished(workdir, point)
  if final is not None:
    if jax.process_index() == 0:
      print(
        f'{workdir} already finished at step {point.step} with this config: '
        f'{run_files.format_metrics(final)}. To train longer raise --config.num_steps or num_epochs; '
        f'to re-evaluate: python -m hashjax.evaluate --workdir {workdir}',
        flush=True,
      )
    return final
  run = build(config)
  start = 0 if point is None else point.step
  if point is not None:
    _check_same_data(workdir, run, point.step)
  ckpt = checkpoint_lib.Checkpointer(
    os.path.join(workdir, 'checkpoints'), config.checkpoint.every_steps, config.checkpoint.keep
  )
  writer = None
  try:
    state = run.state if point is None else ckpt.restore(run.state, point.step)
    # Only now, with the run's state verified, does anything in the workdir change.
    if point is not None and point.later_steps:
      _set_aside(workdir, ckpt, point.later_steps)
    run_files.write_start(workdir, config, run.protocol, step=start, changes=point and point.changes)
    writer = metric_writer.MetricWriter(
      workdir, total_steps=run.total_steps, batch_size=config.batch_size, start_step=start
    )
    _log_start(run, writer, ckpt, point, lock_note)
    describe = methods.get(config.method).describe
    # What the run log and final_metrics.json state: the starting weights, and the method's choices.
    notes = {'weights': models.describe_weights(config.model), **(describe(run.ctx) if describe is not None else {})}
    for name, text in notes.items():
      writer.message(f'{name}: {text}')
    state, preempted = _train(run, state, ckpt, writer, last_ckpt=point and point.step)
    if preempted:
      return {'preempted_at_step': int(state.step)}
    final = run.evaluate_and_log(state.params, int(state.step), writer)
    # wall_seconds counts this process only: a resumed run also says from which step it went on.
    resumed = {'resumed_from_step': start} if start else {}
    final.update(step=int(state.step), wall_seconds=round(time.time() - t_start, 1), **resumed, **notes)
    run_files.write_json(workdir, 'final_metrics.json', final)
    writer.message(f'final step {final["step"]}: {run_files.format_metrics(final)}; workdir {workdir}')
    return final
  finally:
    ckpt.close()
    if writer is not None:
      writer.close()


def _check_same_data(workdir: str, run: Run, step: int) -> None:
  """A resume must see the split the checkpoint was trained on (dataset.data_dir may move)."""
  saved = run_files.read_json(workdir, 'protocol.json')
  now = {'dataset': run.config.dataset.name, **run.protocol.summary()}
  if saved is not None and saved != now:
    raise errors.ConfigMismatchError(
      f'{workdir} holds checkpoint step {step} trained on another split of the data ({saved}; this run '
      f'reads {now}): does --config.dataset.data_dir point at the same data? Nothing was changed'
    )
  if run.total_steps < step:
    raise errors.ConfigMismatchError(
      f"{workdir} holds checkpoint step {step}, past this config's {run.total_steps} steps: raise "
      f'--config.num_steps / num_epochs, or restore an earlier step with --config.checkpoint.restore_step'
    )


def _set_aside(workdir: str, ckpt: checkpoint_lib.Checkpointer, later: tuple[int, ...]) -> None:
  """Moves the checkpoints after the chosen restore_step out of the way (kept, not deleted), so
  that this run's new checkpoints are the latest."""
  if jax.process_index() == 0:
    aside = os.path.join(workdir, 'checkpoints_set_aside')
    os.makedirs(aside, exist_ok=True)
    for step in later:
      target = os.path.join(aside, str(step))
      while os.path.exists(target):
        target += '_'
      os.rename(os.path.join(ckpt.directory, str(step)), target)
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices('hashjax_set_aside')
  ckpt.manager.reload()


def _log_start(run: Run, writer, ckpt, point: ResumePoint | None, lock_note: str | None) -> None:
  config = run.config
  writer.message(
    f'hashjax: method={config.method} model={config.model.name} bits={config.bits} '
    f'dataset={config.dataset.name} [{run.protocol.origin}] {run.protocol.summary()} '
    f'devices={run.mesh.size} x {jax.devices()[0].platform} processes={jax.process_count()}'
  )
  if lock_note:
    writer.message(f'note: {lock_note}')
  if point is not None:
    writer.message(f'resumed from {ckpt.directory}/{point.step} (step {point.step}), checksums verified')
    if point.later_steps:
      writer.message(
        f'checkpoint.restore_step={point.step}: later steps {list(point.later_steps)} moved to checkpoints_set_aside/'
      )
    if point.changes:
      writer.message(
        f'config changed on resume (config_changes.jsonl): {config_resume.format_differences(point.changes)}'
      )
  elif run.init_from_step is not None:  # build() loaded them
    writer.message(f'initialised parameters from {config.init_from} (its step {run.init_from_step})')


def _train(run: Run, state, ckpt: checkpoint_lib.Checkpointer, writer, last_ckpt: int | None):
  """The loop: step, log, check for NaN, checkpoint, evaluate; returns (state, preempted)."""
  config, total = run.config, run.total_steps
  meta = config_resume.checkpoint_meta(config)
  writer.start(int(state.step))

  def save(step):
    try:
      ckpt.save(step, state, meta)
    except checkpoint_lib.NonFiniteStateError as e:
      raise _non_finite_error(step, str(e), last_ckpt) from None

  feed = streaming.Feed(
    run.batches,
    int(state.step),
    total,
    run.data_sharding,
    workers=config.dataset.workers,
    prefetch=config.dataset.prefetch,
  )
  logged = (time.perf_counter(), 0.0)  # (when, feed.wait_seconds) at the last log step
  with feed, _Preemption() as preemption:
    for step in range(int(state.step), total):
      # Before the step, not after the save: a resumed run recomputes exactly what the uninterrupted one did.
      if run.refresh is not None and step and step % run.refresh_every_steps == 0:
        state = run.refresh(state)
      state, metrics = run.step_fn(state, next(feed))
      done = step + 1
      if done == _FAULT_STEP and _FAULT_PROCESS in (None, jax.process_index()):
        os.kill(os.getpid(), _FAULT_SIGNAL)
      due = ckpt.should_save(done) or done == total
      stop = preemption.stop_after(step_is_agreed=due or done % config.log_every_steps == 0)
      save_now = due or stop
      if done % config.log_every_steps == 0 or save_now:
        plain = metric_writer.plain({**metrics, 'epoch': done / run.batches.steps_per_epoch})
        _check_finite(done, plain, last_ckpt)  # before anything is written; save() checks the whole state
        now = time.perf_counter()
        plain['input_wait_fraction'] = (feed.wait_seconds - logged[1]) / max(now - logged[0], 1e-9)
        logged = (now, feed.wait_seconds)
        if feed.streaming and config.dataset.skip_unreadable:
          plain['skipped_images'] = feed.skipped
        writer.write(done, plain)
        writer.progress(done, plain['loss'], input_wait=plain['input_wait_fraction'])
      if save_now:
        save(done)
        last_ckpt = done
      if config.eval.every_steps and done % config.eval.every_steps == 0 and done < total:
        writer.message(f'step {done}: ' + run_files.format_metrics(run.evaluate_and_log(state.params, done, writer)))
      if stop or preemption.arrived_late():
        if last_ckpt != done:  # SIGTERM arrived after this step's save decision
          save(done)
        ckpt.wait()
        writer.message(f'SIGTERM: saved checkpoint at step {done}; exiting. Rerun the same command to resume.')
        return state, True
  ckpt.wait()
  return state, False
