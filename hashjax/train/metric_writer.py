"""Metric writing: the only module that talks to TensorBoard (tensorboardX) and the progress bar.

Process 0 appends one JSON object per logged step to `metrics.jsonl` and writes the same scalars
as TensorBoard event files under `tensorboard/`; other processes write nothing.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time

import jax
import numpy as np
import tqdm


def _plain(value):
  value = np.asarray(value)
  return value.item() if value.size == 1 else value.tolist()


def plain(metrics: dict) -> dict:
  """Metrics (device arrays) as Python numbers and lists."""
  return {k: _plain(v) for k, v in metrics.items()}


def _tb_name(key: str) -> str:
  """TensorBoard tag for a metric name ('mAP@1000' -> 'mAP_at_1000', 'P@H<=2' -> 'P_at_H_le_2')."""
  return key.replace('@', '_at_').replace('<=', '_le_')


def drop_rows_after(path: str, step: int, *, final_step: int) -> None:
  """Rewrites metrics.jsonl without the rows a killed run logged after the step it resumes from
  (they are logged again), and without the final evaluation's rows when that evaluation reruns."""
  if not os.path.exists(path):
    return
  with open(path) as f:
    rows = f.readlines()

  def keep(line):
    try:
      row = json.loads(line)
    except ValueError:  # a line cut short by a kill
      return False
    return row['step'] < step or (row['step'] == step and (row.get('split') == 'train' or step < final_step))

  kept = [line for line in rows if keep(line)]
  if len(kept) < len(rows):
    with open(path + '.tmp', 'w') as f:
      f.writelines(kept)
    os.replace(path + '.tmp', path)


class MetricWriter:
  """`start_step`: the step the run starts from (0, or the restored checkpoint's): rows and
  TensorBoard events past it, left by a killed run, are dropped, so every step appears once."""

  def __init__(self, workdir: str, *, total_steps: int, batch_size: int, start_step: int = 0):
    self.enabled = jax.process_index() == 0
    self.batch_size = batch_size
    self.jsonl = self.tb = self.bar = None
    if not self.enabled:
      return
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, 'metrics.jsonl')
    drop_rows_after(path, start_step, final_step=total_steps)
    self.jsonl = open(path, 'a')
    from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top

    # purge_step: TensorBoard hides the events a killed run wrote at or after this step.
    self.tb = SummaryWriter(os.path.join(workdir, 'tensorboard'), purge_step=start_step + 1)
    # Without a terminal tqdm shows nothing: print a plain line every ~5% of the run instead.
    self._line_every = max(1, total_steps // 20)
    self._total = total_steps

  def write(self, step: int, metrics: dict, prefix: str = 'train'):
    """Logs scalars (and small lists) at `step`; returns them as Python numbers."""
    values = plain(metrics)
    if not self.enabled:
      return values
    self.jsonl.write(json.dumps({'step': step, 'split': prefix, 'time': time.time(), **values}) + '\n')
    self.jsonl.flush()
    for k, v in values.items():
      if isinstance(v, (int, float)) and math.isfinite(v):
        self.tb.add_scalar(f'{prefix}/{_tb_name(k)}', v, step)
    return values

  def image(self, step: int, name: str, rgb: np.ndarray):
    """An (H, W, 3) uint8 image in TensorBoard (e.g. the PR curve at each evaluation)."""
    if self.enabled:
      self.tb.add_image(name, rgb, step, dataformats='HWC')
      self.tb.flush()

  def start(self, step: int):
    """Opens the progress bar at the step training (re)starts from: a resumed run's images/s and
    ETA then count only the steps this process runs, not the restored ones."""
    if not self.enabled:
      return
    self.bar = tqdm.tqdm(
      total=self._total, initial=step, unit='step', dynamic_ncols=True, file=sys.stderr, disable=None, mininterval=1.0
    )
    self._last = self._start = (step, time.perf_counter())
    self._last_line = step

  def progress(self, step: int, loss: float | None = None, input_wait: float | None = None):
    """Advances the bar to `step`, showing throughput (images/s), the latest loss and the fraction
    of wall time the loop waited for input (input-bound when it nears 1)."""
    if not self.enabled:
      return
    last_step, last_time = self._last
    now = time.perf_counter()
    postfix = {}
    if step > last_step:
      postfix['img/s'] = f'{(step - last_step) * self.batch_size / max(now - last_time, 1e-9):.0f}'
      self._last = (step, now)
    if loss is not None:
      postfix['loss'] = f'{loss:.4f}'
    if input_wait is not None:
      postfix['input_wait'] = f'{100 * input_wait:.0f}%'
    self.bar.set_postfix(postfix, refresh=False)
    if self.bar.disable and step // self._line_every > self._last_line // self._line_every:
      self._last_line = step
      rate = (step - self._start[0]) / max(now - self._start[1], 1e-9)
      eta = (self._total - step) / max(rate, 1e-9)
      print(
        f'step {step}/{self._total} ({100 * step / self._total:.0f}%) '
        + ' '.join(f'{k}={v}' for k, v in postfix.items())
        + f' eta {eta / 60:.1f} min',
        flush=True,
      )
    self.bar.update(step - self.bar.n)

  def message(self, text: str):
    if self.enabled:
      (self.bar.write if self.bar is not None else print)(text)

  def close(self):
    if self.enabled:
      if self.bar is not None:
        self.bar.close()
      self.tb.close()
      self.jsonl.close()
