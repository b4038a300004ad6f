"""Tables and figures of a folder of runs (a sweep's, or any): `python -m hashjax.report`'s library."""

from __future__ import annotations

import collections
import csv
import json
import os
import re

import numpy as np

from hashjax.eval import plots
from hashjax.retrieval import codes as codes_lib
from hashjax.retrieval import metrics as metrics_lib
from hashjax.retrieval import pr_curve as pr_curve_lib
from hashjax.workdir import run_files

P_AT_N = (1, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
PCA_POINTS = 2000


CSV_SETTINGS = ('name', 'method', 'dataset', 'protocol', 'ties', 'bits', 'seed')


def find_cells(root: str, required: bool = True) -> list[dict]:
  cells = []
  for folder, _, files in sorted(os.walk(root)):
    if 'final_metrics.json' not in files or 'config.json' not in files:
      continue
    with open(os.path.join(folder, 'final_metrics.json')) as f:
      metrics = json.load(f)
    with open(os.path.join(folder, 'config.json')) as f:
      config = json.load(f)
    protocol = {}
    if os.path.exists(os.path.join(folder, 'protocol.json')):
      with open(os.path.join(folder, 'protocol.json')) as f:
        protocol = json.load(f)
    name = (
      os.path.basename(os.path.dirname(folder))
      if os.path.dirname(folder) != os.path.normpath(root)
      else os.path.basename(folder)
    )
    cells.append(
      {
        'name': name,
        'workdir': folder,
        'method': config['method'],
        'bits': config['bits'],
        'seed': config['seed'],
        'dataset': config['dataset']['name'],
        'protocol': protocol.get('description', config['dataset']['protocol']),
        'ties': config['eval']['ties'],
        'metrics': metrics,
      }
    )
  if not cells and required:
    raise FileNotFoundError(f'no finished runs (final_metrics.json + config.json) below {root!r}')
  return cells


def read_previous(path: str) -> list[dict]:
  """The cells of an earlier report.csv (one row per cell), marked `previous` (no codes to plot)."""
  if not os.path.exists(path):
    raise FileNotFoundError(f'--previous {path!r}: no such file; give the report.csv of an earlier report')
  with open(path, newline='') as f:
    reader = csv.DictReader(f)
    missing = [k for k in (*CSV_SETTINGS, 'workdir') if k not in (reader.fieldnames or [])]
    if missing:
      raise ValueError(
        f'--previous {path!r} lacks the columns {missing}: it needs a report.csv written by this '
        f'module, which records {", ".join(CSV_SETTINGS)} and workdir for every cell'
      )
    rows = list(reader)
  cells = []
  for row in rows:
    cell = {k: row.pop(k) for k in (*CSV_SETTINGS, 'workdir')}  # what is left in the row: the metrics
    cell.update(
      bits=int(cell['bits']),
      seed=int(cell['seed']),
      previous=path,
      metrics={k: float(v) for k, v in row.items() if v != ''},
    )
    cells.append(cell)
  return cells


def merge_cells(current: list[dict], previous: list[dict]) -> list[dict]:
  """`current` plus the `previous` cells it does not have (same name, bits and seed)."""
  have = {(c['name'], c['bits'], c['seed']) for c in current}
  return current + [c for c in previous if (c['name'], c['bits'], c['seed']) not in have]


def _mean_std(values) -> tuple[float, float]:
  values = np.asarray(values, float)
  return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def table(cells, key: str) -> list[str]:
  """Markdown rows: one per name, one column per code length, 'mean ± std (n)'."""
  bits = sorted({c['bits'] for c in cells})
  rows = ['| method | ' + ' | '.join(f'{b} bits' for b in bits) + ' |', '|---|' + '---|' * len(bits)]
  for name in sorted({c['name'] for c in cells}):
    row = []
    for b in bits:
      values = [c['metrics'][key] for c in cells if c['name'] == name and c['bits'] == b and key in c['metrics']]
      if not values:
        row.append('–')
        continue
      mean, std = _mean_std(values)
      row.append(f'{mean:.4f} ± {std:.4f} ({len(values)})' if len(values) > 1 else f'{mean:.4f}')
    rows.append(f'| {name} | ' + ' | '.join(row) + ' |')
  return rows


def load_codes(cell: dict) -> dict:
  """The cell's codes.npz, made from its checkpoint when missing (deep runs)."""
  if not os.path.exists(os.path.join(cell['workdir'], run_files.CODES_FILE)):
    from hashjax.eval import workdir_eval  # pylint: disable=g-import-not-at-top  (builds networks: load lazily)

    workdir_eval.evaluate_workdir(cell['workdir'])
  return run_files.read_codes(cell['workdir'])


def figures(cells, out: str) -> list[str]:
  files = []
  names = sorted({c['name'] for c in cells})
  bits_all = sorted({c['bits'] for c in cells})
  # Every ranking metric against bits (mAP, mAP@K, P@H<=r, R@H<=r, P@N: the seed's P@90-vs-bits plot).
  for key in sorted({k for c in cells for k in c['metrics'] if _column_rank(k) is not None}, key=_column_order):
    label = 'mAP@all' if key == 'mAP' else key
    series, errors = {}, {}
    for name in names:
      values = {
        b: [c['metrics'][key] for c in cells if c['name'] == name and c['bits'] == b and key in c['metrics']]
        for b in bits_all
      }
      bits = [b for b in bits_all if values[b]]
      stats = [_mean_std(values[b]) for b in bits]
      series[name] = (bits, [m for m, _ in stats])
      errors[name] = [s for _, s in stats]
    slug = key.replace('@', '_at_').replace('<=', '_le_')
    files.append(
      plots.lines(
        series,
        os.path.join(out, f'{slug}_vs_bits.png'),
        title=f'{label} against code length',
        xlabel='bits',
        ylabel=label,
        ylim=(0, 1.02),
        errors=errors,
      )
    )

  first = {}  # (name, bits) -> the lowest-seed cell, for curves
  for c in sorted(cells, key=lambda c: c['seed']):
    if 'previous' not in c:  # an earlier report's cell: its run folder, and so its codes, are gone
      first.setdefault((c['name'], c['bits']), c)
  codes = {k: load_codes(c) for k, c in first.items()}
  for b in bits_all:
    pr, pn = {}, {}
    for name in names:
      if (name, b) not in codes:
        continue
      d = codes[(name, b)]
      args = (d['query_packed'], d['query_labels'], d['db_packed'], d['db_labels'])
      curve = pr_curve_lib.pr_curve_by_radius(*args, bits=b)
      pr[name] = (curve['recall'], curve['precision'])
      ns = [n for n in P_AT_N if n <= len(d['db_labels'])]
      m = metrics_lib.retrieval_metrics(*args, bits=b, pn=ns)
      pn[name] = (ns, [m[f'P@{n}'] for n in ns])
    if not pr:  # only earlier reports' cells at this code length: no codes to draw
      continue
    files.append(
      plots.lines(
        pr,
        os.path.join(out, f'pr_curve_{b}b.png'),
        title=f'PR by Hamming radius, {b} bits',
        xlabel='recall',
        ylabel='precision',
        ylim=(0, 1.02),
      )
    )
    files.append(
      plots.lines(
        pn,
        os.path.join(out, f'p_at_n_{b}b.png'),
        title=f'precision@N, {b} bits',
        xlabel='number of retrieved items N',
        ylabel='precision@N',
        xscale='log',
        ylim=(0, 1.02),
      )
    )

  curves = {}
  for (name, b), c in sorted(first.items()):
    path = os.path.join(c['workdir'], 'metrics.jsonl')
    if os.path.exists(path):
      with open(path) as f:
        rows = [json.loads(line) for line in f]
      rows = [r for r in rows if r.get('split') == 'train' and 'loss' in r]
      if rows:
        curves[f'{name} {b}b'] = ([r['step'] for r in rows], [r['loss'] for r in rows])
  if curves:
    files.append(
      plots.lines(
        curves,
        os.path.join(out, 'training_loss.png'),
        title='training loss (lowest seed)',
        xlabel='step',
        ylabel='loss',
      )
    )

  panels, b = {}, bits_all[-1]
  for name in names:
    if (name, b) in codes:
      d = codes[(name, b)]
      keep = np.random.default_rng(0).permutation(len(d['db_labels']))[:PCA_POINTS]
      labels = d['db_labels'][keep]
      panels[name] = (
        codes_lib.unpack_codes(d['db_packed'][keep], b),
        labels if labels.ndim == 1 else labels.argmax(axis=1),
      )
  if panels:
    files.append(
      plots.pca_scatter(
        panels,
        os.path.join(out, f'codes_pca_{b}b.png'),
        title=f'PCA of {b}-bit database codes ({PCA_POINTS} random items)',
      )
    )
  return files


def _column_rank(key: str) -> int | None:
  """The literature's usual column order: mAP, mAP@K, P@H<=r, R@H<=r, P@N; None for non-metrics."""
  if key == 'mAP':
    return 0
  for rank, prefix in enumerate(('mAP@', 'P@H', 'R@H', 'P@'), start=1):
    if key.startswith(prefix):
      return rank
  return None


def _column_order(key: str) -> tuple:
  """Sort key: column rank, then N or K as a number (P@90 before P@100), then the name."""
  digits = re.search(r'(\d+)$', key)
  return _column_rank(key), int(digits.group(1)) if digits else 0, key


def write_report(root: str, out: str | None = None, with_figures: bool = True, previous: tuple = ()) -> dict:
  out = out or root
  earlier = [c for path in previous for c in read_previous(path)]
  cells = merge_cells(find_cells(root, required=not earlier), earlier)
  os.makedirs(out, exist_ok=True)
  metric_keys = sorted(
    {k for c in cells for k, v in c['metrics'].items() if isinstance(v, (int, float)) and k not in ('step',)}
  )
  with open(os.path.join(out, 'report.csv'), 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow([*CSV_SETTINGS, *metric_keys, 'workdir'])
    for c in sorted(cells, key=lambda c: (c['name'], c['bits'], c['seed'])):
      writer.writerow([*(c[k] for k in CSV_SETTINGS), *(c['metrics'].get(k, '') for k in metric_keys), c['workdir']])
  settings = collections.Counter((c['dataset'], c['protocol'], c['ties']) for c in cells)
  lines = [f'# hashjax report: {root}', '']
  for path in previous:
    n = sum(c.get('previous') == path for c in cells)
    lines.append(f'- {n} runs from an earlier report, {path} (their run folders are not here)')
  for (dataset, protocol, ties), n in settings.items():
    lines.append(
      f'- {n} runs on **{dataset}**, protocol: {protocol}; Hamming ranking, ties: {ties} '
      f'(definitions: hashjax/retrieval/metrics.py)'
    )
  lines.append('- cells: mean ± sample std over seeds (number of seeds); a single seed shows the value alone')
  ranked = sorted((k for k in metric_keys if _column_rank(k) is not None), key=_column_order)
  for key in ranked:
    lines += ['', f'## {key}', '', *table(cells, key)]
  files = figures(cells, out) if with_figures else []
  if files:
    lines += ['', '## Figures', ''] + [f'![{os.path.basename(p)}]({os.path.relpath(p, out)})' for p in files]
  with open(os.path.join(out, 'report.md'), 'w') as f:
    f.write('\n'.join(lines) + '\n')
  return {
    'report': os.path.join(out, 'report.md'),
    'csv': os.path.join(out, 'report.csv'),
    'figures': files,
    'cells': len(cells),
  }
