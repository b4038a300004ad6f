"""Converts each reference dump with `python -m hashjax.weights convert`, builds the hashjax model with
it and compares the backbone features to the reference's.

    PYTHONPATH=. python benchmarks/torchvision_parity/jax_compare.py OUTDIR [--tolerance 1e-4]

OUTDIR is torch_dump.py's; its cases.json says which architecture, input size and feature each
reference is. Prints one line per case (max |hashjax - reference| / max |reference|) and a summary;
exits 1 if any case is above the tolerance or fails to convert.

`--negative_control` shows the comparison can see the position-table resize: it swaps in plain
bicubic (size=, align_corners=False: no align_corners, offset or antialias) and runs only the
vision-transformer cases whose input is not the table's native size; each should then be off.
"""

import argparse
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np

from hashjax import models
from hashjax.models.backbones import layers
from hashjax.models.backbones import vit


def plain_bicubic(config, native, grid):
  del config
  if grid == (native, native):
    return None
  return tuple(layers.bicubic_matrix(native, g).astype(np.float32) for g in grid)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('out')
  parser.add_argument('--tolerance', type=float, default=1e-4)
  parser.add_argument('--negative_control', action='store_true', help='a wrong resize: the resized cases must fail')
  args = parser.parse_args()
  out = args.out
  with open(f'{out}/cases.json') as f:
    cases = json.load(f)['cases']
  if args.negative_control:
    vit.pos_embed_matrices = plain_bicubic
    native = lambda arch: vit.CONFIGS[arch].pretrain_size
    cases = {k: c for k, c in cases.items() if c['arch'] in vit.CONFIGS and c['size'] != native(c['arch'])}
  worst, bad, converted = 0.0, 0, {}
  for name, case in cases.items():
    arch, size = case['arch'], case['size']
    dst = converted.get(case['weights'])
    if dst is None:
      dst = f'{out}/w_{os.path.splitext(case["weights"])[0]}'
      if not os.path.exists(dst):
        cmd = [sys.executable, '-m', 'hashjax.weights', 'convert', '--arch', arch, '--src', f'{out}/{case["weights"]}']
        p = subprocess.run(cmd + ['--dst', dst], capture_output=True, text=True)
        if p.returncode:
          print(f'{name}: convert failed: {p.stderr[-300:]}')
          bad += 1
          continue
      converted[case['weights']] = dst
    config = dict(name=arch, pretrained=dst)
    if 'feature_layer' in case:
      config['feature_layer'] = case['feature_layer']
    graphdef, params = models.build(config, 48, (size, size, 3), jax.random.key(0))
    forward = models.make_forward(graphdef)
    x = np.load(f'{out}/x{size}.npy').transpose(0, 2, 3, 1)
    feats, _ = jax.jit(lambda p, x: forward(p, x, train=False, with_features=True))(params, jnp.asarray(x))
    ref = np.load(f'{out}/{case["features"]}')
    err = float(np.abs(np.asarray(feats) - ref).max() / (np.abs(ref).max() + 1e-12))
    worst = max(worst, err)
    bad += err > args.tolerance
    print(f'{name}: {arch} at {size} px, features {tuple(feats.shape)}: max rel err {err:.2e}', flush=True)
  if args.negative_control:
    print(f'negative control: {bad} of {len(cases)} cases off (tolerance {args.tolerance:g}), expected all')
    return 0 if bad == len(cases) else 1
  print(f'parity: {bad} of {len(cases)} cases off (tolerance {args.tolerance:g}), worst rel err {worst:.2e}')
  return 1 if bad else 0


if __name__ == '__main__':
  sys.exit(main())
