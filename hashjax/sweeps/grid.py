"""A grid of runs (configs x code lengths x seeds), one workdir per cell, resumable: `python -m hashjax.sweep`'s library.

Cells run one after another (`shard` = (i, n) runs every n-th cell from i). A cell whose
`final_metrics.json` exists is skipped; a killed cell resumes from its own checkpoint. A cell folder
whose `config.json` differs from the config this sweep would run stops the sweep before any cell
runs, so a table never mixes settings. Cell workdirs: `<root>/<config name>/<bits>b_seed<seed>`.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import os
import re

import ml_collections

from hashjax.config import files as config_files
from hashjax.config import resume as config_resume
from hashjax.train import trainer


@dataclasses.dataclass(frozen=True)
class Cell:
  spec: str  # config file[:arg]
  name: str  # the config's name in tables and folders
  bits: int
  seed: int

  def workdir(self, root: str) -> str:
    return os.path.join(root, self.name, f'{self.bits}b_seed{self.seed}')


def config_name(spec: str) -> str:
  """'configs/dsh.py:quick,bits=12' -> 'dsh_quick_bits-12' (a folder-safe, readable name)."""
  path, _, arg = spec.partition(':')
  stem = os.path.splitext(os.path.basename(path))[0]
  return stem + (('_' + re.sub(r'[^A-Za-z0-9._-]+', '-', arg.replace(',', '_').replace('=', '-'))) if arg else '')


def parse_ints(text: str, what: str) -> tuple[int, ...]:
  try:
    values = tuple(int(v) for v in text.split(',') if v.strip())
  except ValueError:
    raise argparse.ArgumentTypeError(f'--{what} takes comma-separated integers, got {text!r}') from None
  if not values:
    raise argparse.ArgumentTypeError(f'--{what} is empty')
  return values


def _has_key(config: ml_collections.ConfigDict, key: str) -> bool:
  try:
    config_files.check_override_keys(config, [f'--config.{key}'])
  except KeyError:
    return False
  return True


def apply_overrides(config: ml_collections.ConfigDict, overrides: list[str]) -> None:
  """`key.sub=value` strings (value as a Python literal, else a string) onto the keys this config has
  (a shallow baseline has no `model.width`, say); `check_overrides` catches keys no config has."""
  values = {}
  for item in overrides:
    key, sep, text = item.partition('=')
    if not sep:
      raise ValueError(f'--set {item!r}: expected key=value')
    if not _has_key(config, key):
      continue
    try:
      values[key] = ast.literal_eval(text)
    except (ValueError, SyntaxError):
      values[key] = text
  config.update_from_flattened_dict(values)


def check_overrides(configs: list[ml_collections.ConfigDict], overrides: list[str]) -> None:
  for item in overrides:
    key = item.partition('=')[0]
    if not any(_has_key(c, key) for c in configs):
      config_files.check_override_keys(configs[0], [f'--config.{key}'])  # raises, listing the valid keys


def grid(specs, bits, seeds) -> list[Cell]:
  names = [config_name(s) for s in specs]
  if len(set(names)) != len(names):
    raise ValueError(f'two --config arguments give the same name: {names}')
  return [Cell(s, n, b, seed) for s, n in zip(specs, names) for b in bits for seed in seeds]


def cell_config(cell: Cell, overrides: list[str]) -> ml_collections.ConfigDict:
  config = config_files.load_config_file(cell.spec)
  apply_overrides(config, overrides)
  config.bits, config.seed = cell.bits, cell.seed
  return config


def check_existing_cells(root: str, cells: list[Cell], overrides: list[str]) -> None:
  """A cell folder that already holds a run (finished or killed) must have run this sweep's config:
  skipping or resuming it otherwise would put another setting's numbers in the table."""
  for cell in cells:
    path = os.path.join(cell.workdir(root), 'config.json')
    if not os.path.exists(path):
      continue
    with open(path) as f:
      old = json.load(f)
    diff = config_resume.differences(
      config_resume.flatten(old), config_resume.flat_config(cell_config(cell, overrides))
    )
    if diff:
      raise ValueError(
        f'{cell.workdir(root)} holds a run with another config than this sweep asks for '
        f'({config_resume.format_differences(diff, 5)}): give the sweep another '
        '--workdir, or delete that folder to rerun the cell'
      )


def run(root: str, cells: list[Cell], overrides: list[str], shard: tuple[int, int] = (0, 1)) -> list[dict]:
  """Runs (or skips, or resumes) this shard's cells; returns one status dict per cell."""
  check_existing_cells(root, cells, overrides)
  os.makedirs(root, exist_ok=True)
  with open(os.path.join(root, 'sweep.json'), 'w') as f:
    json.dump({'cells': [dataclasses.asdict(c) for c in cells], 'overrides': overrides}, f, indent=2)
  index, count = shard
  statuses = []
  for i, cell in enumerate(cells):
    if i % count != index:
      continue
    workdir = cell.workdir(root)
    done = os.path.join(workdir, 'final_metrics.json')
    if os.path.exists(done):
      print(f'[{i + 1}/{len(cells)}] {cell.name} {cell.bits} bits seed {cell.seed}: done, skipped', flush=True)
      statuses.append({'cell': dataclasses.asdict(cell), 'status': 'skipped'})
      continue
    print(f'[{i + 1}/{len(cells)}] {cell.name} {cell.bits} bits seed {cell.seed} -> {workdir}', flush=True)
    metrics = trainer.train_and_evaluate(cell_config(cell, overrides), workdir)
    if 'preempted_at_step' in metrics:
      # SIGTERM (a scheduler's preemption, a user's kill): the cell saved its checkpoint, and the
      # sweep must exit now rather than start the next cell.
      print(
        f'sweep stopped by SIGTERM in {cell.name} {cell.bits} bits seed {cell.seed}; rerun the same command to resume',
        flush=True,
      )
      statuses.append({'cell': dataclasses.asdict(cell), 'status': 'preempted'})
      break
    statuses.append({'cell': dataclasses.asdict(cell), 'status': 'ran', 'mAP': metrics.get('mAP')})
  return statuses
