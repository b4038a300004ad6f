"""The input of a training run: host batches decoded in grain worker processes, put on the devices
by a thread while the current step runs.

`Feed(batches, start, stop, sharding, workers, prefetch)` yields the global batch of every step in
[start, stop). Two paths:
  * in-memory datasets (plain uint8 arrays): the loop thread gathers each batch with NumPy and
    transfers it (`workers=0, prefetch=0`): a gather of a few MB costs less than a thread hand-off.
  * datasets decoded from disk (`lazy_images.LazyImages`: image lists and folders, tfds records
    read per process, STL-10's memory-mapped unlabelled split): a grain `MapDataset` over the steps
    maps each step to this process's rows of its global batch (`pipeline.BatchReader`: read, decode,
    resize, in `workers` processes via `mp_prefetch`), and a thread makes them global device arrays
    up to `prefetch` batches ahead.
Either way the batch at step s is a function of (seed, s) only, so a resumed run sees the batches
the uninterrupted one saw; memory is bounded by the workers' buffers and `prefetch`, never a split.
`wait_seconds` is the time the loop spent waiting for its next batch: the train loop reports it as
the fraction of wall time (`input_wait_fraction`), so a user sees whether the run is input-bound.

A worker's exception (an image that cannot be decoded names its file) ends the run with that
error; a worker that dies ends it with grain's error, never a silent stall.
"""

from __future__ import annotations

import atexit
from collections.abc import Iterator
import os
import queue
import threading
import time

from absl import flags
import grain
from grain._src.python.ipc import shared_memory_array
import jax

from hashjax.data import lazy_images
from hashjax.data import pipeline


def available_cores() -> int:
  return len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1


def worker_count(images, workers: int) -> int:
  """The decoding processes for `images`: none for in-memory arrays; `workers` (-1: one per core
  available) for images decoded from disk."""
  if not isinstance(images, lazy_images.LazyImages):
    return 0
  return available_cores() if workers < 0 else workers


def grain_iterator(dataset: grain.MapDataset, workers: int, buffer: int) -> Iterator:
  """The elements of `dataset` in order, computed by `workers` processes (0: this one), each at most
  `buffer` elements ahead. (grain's default ReadOptions would run 16 threads per process, 500
  elements ahead: 500 decoded batches of 224 px images are ~10 GB.)"""
  it = dataset.to_iter_dataset(grain.ReadOptions(num_threads=1, prefetch_buffer_size=buffer))
  if workers > 0:
    if not flags.FLAGS.is_parsed():  # grain reads absl flags; commands without absl have parsed none
      flags.FLAGS.mark_as_parsed()
    it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers, per_worker_buffer_size=buffer))
  return iter(it)


def _finish_shared_memory_unlinks() -> None:
  """At exit: the shared memory of the last batches workers handed over is unlinked by grain in a
  background thread pool; a process that exits first leaves them to Python's resource tracker,
  which removes them but prints 'There appear to be N leaked shared_memory objects' after every run.
  Finish those unlinks, and make any later one synchronous."""
  array = shared_memory_array.SharedMemoryArray
  pool = getattr(array, '_del_thread_pool', None)
  if pool is None:
    return
  array._disable_async_del()  # pylint: disable=protected-access
  pool.close()
  pool.join()


atexit.register(_finish_shared_memory_unlinks)


class Feed:
  """Iterator over (global batch) of steps start..stop-1 (class docstring of the module)."""

  def __init__(
    self,
    batches: pipeline.TrainBatches,
    start: int,
    stop: int,
    sharding: jax.sharding.Sharding,
    *,
    workers: int = -1,
    prefetch: int = 2,
  ):
    self.batches, self.sharding = batches, sharding
    self.workers = worker_count(batches.images, workers)
    self.streaming = isinstance(batches.images, lazy_images.LazyImages)
    self.wait_seconds, self.skipped = 0.0, 0
    self._step, self._stop = start, stop
    self._thread = None
    if self.streaming:
      reader = batches.reader()
      host = grain_iterator(grain.MapDataset.range(start, stop).map(reader), self.workers, buffer=2)
      self._queue = queue.Queue(maxsize=max(1, prefetch))
      self._closed = threading.Event()
      self._thread = threading.Thread(target=self._fill, args=(host, start), daemon=True, name='hashjax-device-feed')
      self._thread.start()

  def _fill(self, host, step):
    """The device thread: host batches -> extras added -> global arrays, in step order."""
    try:
      for batch in host:
        batch = dict(batch)
        skipped = int(batch.pop('skipped', 0))
        batch.update(self.batches.extras_of(step))
        item = (pipeline.to_global(batch, self.sharding), skipped)
        while not self._closed.is_set():
          try:
            self._queue.put(item, timeout=0.5)
            break
          except queue.Full:
            continue
        if self._closed.is_set():
          return
        step += 1
    except BaseException as e:  # pylint: disable=broad-except  (handed to the loop, which raises it)
      self._queue.put(e)

  def __iter__(self):
    return self

  def __next__(self) -> dict[str, jax.Array]:
    if self._step >= self._stop:
      raise StopIteration
    t0 = time.perf_counter()
    if self.streaming:
      item = self._queue.get()
      if isinstance(item, BaseException):
        raise item
      batch, skipped = item
      self.skipped += skipped
    else:
      batch = pipeline.to_global(self.batches[self._step], self.sharding)
    self.wait_seconds += time.perf_counter() - t0
    self._step += 1
    return batch

  def close(self):
    """Stops the device thread and the worker processes (an early end: preemption, an error)."""
    if self._thread is not None:
      self._closed.set()
      while self._thread.is_alive():
        try:
          self._queue.get(timeout=0.1)
        except queue.Empty:
          pass
      self._thread = None

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()
