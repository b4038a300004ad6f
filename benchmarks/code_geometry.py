"""How a trained run's binary codes sit relative to each other and to its class centers.

  PYTHONPATH=. python benchmarks/code_geometry.py runs/test/idcwh_48b_30ep [--split query|database]

Prints one JSON object (single-label runs):
  undecided_bits   per class, the fraction of bits whose class mean of sign(h) has |mean| < 0.5
  class_code_hamming  Hamming distances between the classes' majority codes (sign of the class sum)
  and, for runs with class centers in params['method']['centers'] (DCWH, IDCWH):
  center_hamming   Hamming distances between sign(centers)
  cos_own_center   per class, cos(majority code, that class's center)
  cos_other_center_mean  per class, the mean cos(majority code, another class's center)
  nearest_center_accuracy  the fraction of codes h nearest (Euclidean) to their own class's center

Small Hamming distances between class codes mean Hamming ranking cannot separate those classes,
whatever the real-valued outputs do; a near-zero cos_own_center means the centers act as the weights
of a linear classifier on h rather than as the prototypes the codes gather around.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from hashjax.eval import workdir_eval


def geometry(codes: np.ndarray, labels: np.ndarray, centers: np.ndarray | None) -> dict:
  classes = np.unique(labels)
  b = np.where(codes >= 0, 1.0, -1.0)
  means = np.stack([b[labels == c].mean(0) for c in classes])
  majority = np.where(means >= 0, 1.0, -1.0)
  bits = codes.shape[1]
  out = {
    'classes': classes.tolist(),
    'undecided_bits': np.round((np.abs(means) < 0.5).mean(1), 3).tolist(),
    'class_code_hamming': ((bits - majority @ majority.T) / 2).astype(int).tolist(),
  }
  if centers is not None:
    signs = np.where(centers >= 0, 1.0, -1.0)
    unit = centers / np.linalg.norm(centers, axis=1, keepdims=True)
    cos = (majority / np.sqrt(bits)) @ unit[classes].T
    off = ~np.eye(len(classes), dtype=bool)
    d2 = ((codes[:, None, :] - centers[None]) ** 2).sum(-1)
    out.update(
      {
        'center_hamming': ((bits - signs @ signs.T) / 2).astype(int).tolist(),
        'cos_own_center': np.round(np.diag(cos), 3).tolist(),
        'cos_other_center_mean': np.round(np.where(off, cos, 0).sum(1) / off.sum(1), 3).tolist(),
        'nearest_center_accuracy': round(float(np.mean(classes[d2.argmin(1)] == labels)), 4),
      }
    )
  return out


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('workdir')
  parser.add_argument('--split', choices=('query', 'database'), default='query')
  args = parser.parse_args(argv)
  config, run, params, step = workdir_eval.load_run(args.workdir)  # one build and restore
  q, db = workdir_eval.encode_protocol(config, run, params)
  protocol = run.protocol
  index = protocol.query if args.split == 'query' else protocol.database
  codes = np.asarray(q if args.split == 'query' else db)
  labels = np.asarray(protocol.labels[index])
  if labels.ndim != 1:
    raise SystemExit(f'{args.workdir}: multi-label runs are not supported (labels of shape {labels.shape})')
  centers = params.get('method', {}).get('centers')
  result = geometry(codes, labels, None if centers is None else np.asarray(centers, np.float64))
  print(json.dumps({'workdir': args.workdir, 'split': args.split, 'step': step, **result}))


if __name__ == '__main__':
  main()
