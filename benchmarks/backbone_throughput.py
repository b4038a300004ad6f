"""Training throughput (images/s) of the ImageNet backbones with a hash head (issue #6), side by side.

  python benchmarks/backbone_throughput.py [--archs resnet18,vgg16] [--size 224] [--dtypes float32,bfloat16]
                                           [--batch 32] [--steps 5] [--repeats 2] [--method dlbhc|dsh]

The real jitted train step (hashjax.train.trainer.build: DLBHC's cross-entropy loss on the `dlbhc_<arch>`
model by default, or DSH on the plain hash head) on random uint8 RGB batches at `size` px, after a
warm-up (compile) step. All settings are compiled first, then timed in interleaved rounds; the best
round counts, so ratios within one run survive load drift. On a GPU (if one is lent) run it at 224.
"""

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

parser = argparse.ArgumentParser()
parser.add_argument('--archs', default='resnet18,vgg16')
parser.add_argument('--size', type=int, default=224)
parser.add_argument('--dtypes', default='float32,bfloat16')
parser.add_argument('--batch', type=int, default=32)
parser.add_argument('--steps', type=int, default=5)
parser.add_argument('--repeats', type=int, default=2)
parser.add_argument('--method', default='dlbhc', choices=('dlbhc', 'dsh'))
args = parser.parse_args()

import jax  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

from hashjax.data import pipeline  # pylint: disable=g-import-not-at-top
from hashjax.data import protocols  # pylint: disable=g-import-not-at-top
from hashjax.data import sources  # pylint: disable=g-import-not-at-top
from hashjax.train import trainer  # pylint: disable=g-import-not-at-top
from tests import helpers  # pylint: disable=g-import-not-at-top


def fake_protocol(size, n):
  rng = np.random.default_rng(0)
  split = sources.Split(
    rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8), rng.integers(0, 10, n).astype(np.int32)
  )
  return protocols.build(sources.Source('random', {'train': split, 'test': split}, 10, 'random'), 'full')


protocol = fake_protocol(args.size, args.batch * (args.steps + 1))
settings = []
for arch in args.archs.split(','):
  for dtype in args.dtypes.split(','):
    c = helpers.load_config(args.method, 'quick')
    c.model.name = f'dlbhc_{arch}' if args.method == 'dlbhc' else arch
    c.model.dtype = dtype
    c.image_size, c.augment, c.normalize = 0, 'none', 'imagenet'
    c.batch_size, c.num_steps = args.batch, 1000
    run = trainer.build(c, protocol=protocol)
    batches = [pipeline.to_global(run.batches[i], run.data_sharding) for i in range(args.steps)]
    step = run.step_fn.lower(run.state, batches[0]).compile()
    state, m = step(run.state, batches[0])
    jax.block_until_ready(m)
    settings.append(dict(arch=arch, dtype=dtype, step=step, state=state, batches=batches, best=0.0))
    print(f'compiled {arch} {dtype}', flush=True)

for _ in range(args.repeats):
  for s in settings:
    t = time.perf_counter()
    for b in s['batches']:
      s['state'], m = s['step'](s['state'], b)
    jax.block_until_ready(m)
    s['best'] = max(s['best'], args.steps * args.batch / (time.perf_counter() - t))

device = jax.devices()[0]
print(
  f'\n{args.method} train step, {args.size}x{args.size} RGB, batch {args.batch}, {device.platform} '
  f'({getattr(device, "device_kind", "")}), best of {args.repeats} rounds of {args.steps} steps\n'
)
print('| backbone | dtype | images/s | vs float32 |\n|---|---|---|---|')
for s in settings:
  base = (
    next(b['best'] for b in settings if b['arch'] == s['arch'] and b['dtype'] == 'float32')
    if any(b['arch'] == s['arch'] and b['dtype'] == 'float32' for b in settings)
    else None
  )
  print(
    f'| {s["arch"]} | {s["dtype"]} | {s["best"]:.1f} | {s["best"] / base:.2f}x |'
    if base
    else f'| {s["arch"]} | {s["dtype"]} | {s["best"]:.1f} | - |'
  )
