"""Writes tests/data/torch_bicubic.npz: torch's F.interpolate(mode='bicubic') on small random grids, in
float64 (so torch's own float32 rounding is not in the fixture), for tests/test_vit.py.

    TORCH_VENV/bin/python benchmarks/torchvision_parity/bicubic_fixture.py tests/data/torch_bicubic.npz

Modes, as the position-embedding resizes use them: 'align_corners' (torchvision's
interpolate_embeddings: size=, align_corners=True), 'offset' (DINOv2's interpolate_offset=0.1:
scale_factor=((h + 0.1) / M, (w + 0.1) / M)), 'antialias' (DINOv2 _reg: size=, antialias=True),
'size' (size=, align_corners=False). Keys: `in{M}` (1, 1, M, M) and `{mode}_{M}_{h}_{w}`.
"""

import sys

import numpy as np
import torch
import torch.nn.functional as F

CASES = {
  'align_corners': [(14, 10, 10), (14, 24, 24), (5, 4, 4), (5, 7, 7), (5, 2, 2), (5, 4, 6)],
  'offset': [(37, 16, 16), (5, 4, 4), (5, 2, 2), (5, 7, 7), (5, 3, 3), (5, 2, 7)],
  'antialias': [(37, 16, 16), (5, 4, 4), (5, 2, 2), (5, 7, 7), (5, 4, 7)],
  'size': [(5, 4, 4), (5, 7, 7), (5, 3, 6)],
}


def interpolate(x, mode, m, h, w):
  if mode == 'align_corners':
    return F.interpolate(x, size=(h, w), mode='bicubic', align_corners=True)
  if mode == 'offset':
    return F.interpolate(x, scale_factor=((h + 0.1) / m, (w + 0.1) / m), mode='bicubic')
  if mode == 'antialias':
    return F.interpolate(x, size=(h, w), mode='bicubic', antialias=True)
  return F.interpolate(x, size=(h, w), mode='bicubic', align_corners=False)


def main():
  rng = np.random.default_rng(0)
  tables = {m: rng.standard_normal((1, 1, m, m)) for m in (5, 14, 37)}
  out = {f'in{m}': t for m, t in tables.items()}
  for mode, cases in CASES.items():
    for m, h, w in cases:
      y = interpolate(torch.from_numpy(tables[m]), mode, m, h, w)
      assert tuple(y.shape[-2:]) == (h, w), (mode, m, h, w, y.shape)
      out[f'{mode}_{m}_{h}_{w}'] = y.numpy()
  np.savez_compressed(sys.argv[1], torch_version=np.array(torch.__version__), **out)
  print(f'{len(out)} arrays, torch {torch.__version__}')


if __name__ == '__main__':
  main()
