"""Hashing precomputed features offline (issue #38 part 6): Fashion-MNIST, two feature sets, every
supervised method's :features variant and the training-free baselines, with wall times.

    python benchmarks/foundation_features.py [--out runs/foundation_features] [--bits 16,32,64]
        [--epochs 5] [--source_epochs 3] [--methods dsh,csq,...] [--baselines lsh,...] [--pca_dim 128]

1. The stand-in foundation model: configs/dsh.py (the DSH network, 48 bits) trained on the images
   for `--source_epochs` epochs; `python -m hashjax.extract_features --workdir` of it gives its
   fc1 features (500-d after ReLU, float16) of all 70k images. Trained with the labels of the same
   training split the hash heads then use: a supervised feature extractor, not a self-supervised one
   like DINOv2 (no DINOv2 weights or internet here).
2. A training-free feature set: the top `--pca_dim` principal components of the pixels (fitted on
   the 60k training images), written as uncompressed .npz files (the other accepted layout).
3. On each: every supervised method's `:features` config (an MLP, hashjax/config/common.py
   use_features, `--epochs` epochs instead of its 20) and the baselines' (`:features`), at each
   code length; query = the 10k test images, database = the 60k training images, mAP@all, stable
   ties, one seed.
Every cell is a workdir under --out (a rerun skips finished cells); the table (markdown) and
results.json go to --out. The 2-core CPU numbers are in BENCHMARKS.md ("Hashing precomputed features")
and benchmarks/notes/foundation_features.md.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from hashjax.baselines import _common  # noqa: E402
from hashjax.config import files as config_files  # noqa: E402
from hashjax.data import sources  # noqa: E402
from hashjax.eval import features as features_lib  # noqa: E402
from hashjax.train import trainer  # noqa: E402

SUPERVISED = ('dsh', 'csq', 'dpsh', 'dtsh', 'hashnet', 'dcwh', 'idcwh', 'greedyhash', 'dsdh')
BASELINES = ('sign', 'orth_lsh', 'lsh', 'pcah', 'itq', 'sh')


def config(name: str, arg: str, **overrides):
  c = config_files.load_config_file(str(ROOT / 'configs' / f'{name}.py') + ':' + arg)
  for key, value in overrides.items():
    node = c
    *path, last = key.split('.')
    for part in path:
      node = node[part]
    node[last] = value
  return c


def run(c, workdir: str) -> dict:
  """final_metrics of the cell (trained now, or read back when it finished before)."""
  done = os.path.join(workdir, 'final_metrics.json')
  if os.path.isfile(done):
    with open(done) as f:
      return json.load(f)
  return trainer.train_and_evaluate(c, workdir)


def pca_features(out: str, dim: int) -> float:
  """Writes the PCA features of Fashion-MNIST's pixels as train.npz / test.npz; returns the seconds."""
  if os.path.isfile(os.path.join(out, 'test.npz')):
    return json.load(open(os.path.join(out, 'seconds.json')))['seconds']
  t = time.time()
  source = sources.load('fashion_mnist')
  pixels = {
    s: split.images.reshape(len(split.images), -1).astype(np.float64) / 255.0 for s, split in source.splits.items()
  }
  mean, components, _ = _common.pca(pixels['train'], dim)
  os.makedirs(out, exist_ok=True)
  for name, x in pixels.items():
    np.savez(
      os.path.join(out, f'{name}.npz'),
      features=((x - mean) @ components).astype(np.float32),
      labels=source.splits[name].labels,
    )
  seconds = round(time.time() - t, 1)
  json.dump({'seconds': seconds}, open(os.path.join(out, 'seconds.json'), 'w'))
  return seconds


def main():
  p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  p.add_argument('--out', default='runs/foundation_features')
  p.add_argument('--bits', default='16,32,64')
  p.add_argument('--epochs', type=int, default=5, help='epochs of each :features run')
  p.add_argument('--source_epochs', type=int, default=3, help='epochs of the DSH network the features come from')
  p.add_argument('--methods', default=','.join(SUPERVISED))
  p.add_argument('--baselines', default=','.join(BASELINES))
  p.add_argument('--pca_dim', type=int, default=128)
  args = p.parse_args()
  bits = [int(b) for b in args.bits.split(',')]
  methods = [m for m in args.methods.split(',') if m]
  shallow = [b for b in args.baselines.split(',') if b]
  out = args.out
  t_total = time.time()

  source_dir = os.path.join(out, 'source_dsh')
  source = run(config('dsh', 'bits=48', num_epochs=args.source_epochs), source_dir)
  t = time.time()
  feats = {'dsh': os.path.join(out, 'feats_dsh'), 'pca': os.path.join(out, f'feats_pca{args.pca_dim}')}
  extraction = features_lib.extract(feats['dsh'], workdir=source_dir, dtype='float16')
  setup = {
    'source_dsh': {'mAP@48b': source['mAP'], 'seconds': source['wall_seconds'], 'epochs': args.source_epochs},
    'extract_seconds': extraction.get('seconds', round(time.time() - t, 1)),
    'pca_seconds': pca_features(feats['pca'], args.pca_dim),
  }
  print(json.dumps(setup), flush=True)

  results = []
  for feature_set, data_dir in feats.items():
    for b in bits:
      for name in [*methods, *shallow]:
        overrides = {'dataset.data_dir': data_dir}
        if name in methods:
          overrides['num_epochs'] = args.epochs
        final = run(config(name, f'features,bits={b}', **overrides), os.path.join(out, feature_set, name, f'{b}b'))
        row = {
          'features': feature_set,
          'method': name,
          'bits': b,
          'mAP': final['mAP'],
          'seconds': final['wall_seconds'],
        }
        results.append(row)
        print(json.dumps(row), flush=True)
  summary = {'setup': setup, 'results': results, 'args': vars(args), 'total_seconds': round(time.time() - t_total, 1)}
  with open(os.path.join(out, 'results.json'), 'w') as f:
    json.dump(summary, f, indent=2)

  header = '| method | ' + ' | '.join(f'{s} {b}b' for s in feats for b in bits) + ' | s / run |'
  lines = [header, '|---' * (2 + len(feats) * len(bits)) + '|']
  for name in [*methods, *shallow]:
    cells = [
      next(r for r in results if (r['features'], r['method'], r['bits']) == (s, name, b)) for s in feats for b in bits
    ]
    seconds = np.median([c['seconds'] for c in cells])
    lines.append(f'| {name} | ' + ' | '.join(f'{c["mAP"]:.4f}' for c in cells) + f' | {seconds:.0f} |')
  table = '\n'.join(lines)
  with open(os.path.join(out, 'table.md'), 'w') as f:
    f.write(table + '\n')
  print(table)
  print(f'total {summary["total_seconds"]} s', flush=True)


if __name__ == '__main__':
  main()
