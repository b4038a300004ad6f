"""Shallow baselines (LSH, PCAH, ITQ, SH) on Fashion-MNIST pixels.

Protocol: fit on the 60k train images (784 pixels scaled to [0, 1]); query = the
10k test images, database = the 60k train images; relevance = same label.
Metrics: mAP@all (Hamming ranking, ties broken stably by database index; AP over
all relevant items) and P@90 (precision of the top 90, same ranking).

    /work/venv/bin/python benchmarks/baselines_fashion_mnist.py [--bits 16 32 64]
        [--methods lsh pcah itq sh] [--seed 0] [--data DIR] [--no-centre-lsh]
"""

from __future__ import annotations

import argparse
import gzip
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from hashjax import baselines  # noqa: E402

DATA = pathlib.Path('/usr/share/datasets/fashion-mnist')


def read_idx(path: pathlib.Path) -> np.ndarray:
  """IDX (big-endian): 2 zero bytes, dtype code, ndim, ndim uint32 sizes, data."""
  with gzip.open(path, 'rb') as f:
    raw = f.read()
  if raw[0:2] != b'\x00\x00' or raw[2] != 0x08:
    raise ValueError(f'{path}: not an unsigned-byte IDX file')
  ndim = raw[3]
  shape = tuple(int(s) for s in np.frombuffer(raw, '>u4', count=ndim, offset=4))
  data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
  if data.size != int(np.prod(shape)):
    raise ValueError(f'{path}: {data.size} bytes, header says {shape}')
  return data.reshape(shape)


def load(data_dir: pathlib.Path, split: str) -> tuple[np.ndarray, np.ndarray]:
  x = read_idx(data_dir / f'{split}-images-idx3-ubyte.gz')
  y = read_idx(data_dir / f'{split}-labels-idx1-ubyte.gz')
  return x.reshape(len(x), -1).astype(np.float32) / 255.0, y.astype(np.int64)


def evaluate(q_codes, q_labels, db_codes, db_labels, topk=90, chunk=1000):
  """(mAP@all, P@topk) for ±1 codes; Hamming d = (bits - q . db) / 2."""
  bits = q_codes.shape[1]
  if bits > 255:
    raise ValueError('uint8 distances need bits <= 255')
  db = db_codes.astype(np.float32).T  # (bits, N)
  n_db = db.shape[1]
  aps, precs = [], []
  for s in range(0, len(q_codes), chunk):
    q = q_codes[s : s + chunk].astype(np.float32)
    # exact small integers in float32; uint8 keys make the stable sort a radix sort
    dist = ((bits - q @ db) * 0.5).astype(np.uint8)
    order = np.argsort(dist, axis=1, kind='stable')
    del dist
    rel = db_labels[order] == q_labels[s : s + chunk, None]
    del order
    precs.append(rel[:, :topk].mean(axis=1))
    n_rel = rel.sum(axis=1)
    rows, ranks = np.nonzero(rel)  # row-major: ranks ascending within a row
    # m-th relevant hit of a row (1-based) at 0-based position `rank`: precision m/(rank+1)
    starts = np.concatenate([[0], np.cumsum(n_rel)[:-1]])
    m = np.arange(len(rows)) - np.repeat(starts, n_rel) + 1
    ap_sum = np.bincount(rows, weights=m / (ranks + 1.0), minlength=len(q))
    aps.append(np.where(n_rel > 0, ap_sum / np.maximum(n_rel, 1), 0.0))
    assert rel.shape[1] == n_db
  return float(np.concatenate(aps).mean()), float(np.concatenate(precs).mean())


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument('--bits', type=int, nargs='+', default=[16, 32, 64])
  ap.add_argument('--methods', nargs='+', default=['lsh', 'pcah', 'itq', 'sh'])
  ap.add_argument('--seed', type=int, default=0)
  ap.add_argument('--data', type=pathlib.Path, default=DATA)
  ap.add_argument('--no-centre-lsh', action='store_true', help='LSH on raw pixels (FIRe)')
  args = ap.parse_args()

  x_train, y_train = load(args.data, 'train')
  x_test, y_test = load(args.data, 't10k')
  print(f'train {x_train.shape}, test {x_test.shape}, seed {args.seed}', flush=True)
  print('| method | bits | mAP@all | P@90 | fit s | eval s |')
  print('|---|---|---|---|---|---|')
  for name in args.methods:
    kwargs = {'centre': False} if (name == 'lsh' and args.no_centre_lsh) else {}
    for bits in args.bits:
      t0 = time.perf_counter()
      enc = baselines.get(name)(x_train, bits, seed=args.seed, **kwargs)
      t1 = time.perf_counter()
      m_ap, p90 = evaluate(enc.encode(x_test), y_test, enc.encode(x_train), y_train)
      t2 = time.perf_counter()
      label = name + ('(raw)' if kwargs else '')
      print(f'| {label} | {bits} | {m_ap:.4f} | {p90:.4f} | {t1 - t0:.1f} | {t2 - t1:.1f} |', flush=True)


if __name__ == '__main__':
  main()
