"""Training throughput of the DSH step (images/s), side by side in one process.

  python benchmarks/dsh_throughput.py [--devices 1|8] [--sizes 28,32] [--dtypes float32,bfloat16]
                                      [--impls reference,fast] [--batch 200] [--steps 20]
                                      [--repeats 3] [--xla-flags "--xla_cpu_..."]
  python benchmarks/dsh_throughput.py --matrix [--matrix-flags "" "--xla_cpu_use_onednn=true ..."]

Times the real jitted train step (hashjax.train.trainer.build) on random uint8 batches after a warm-up
(compile) step. Every (size, dtype, impl) setting is compiled first, then timed in interleaved
rounds (best round counts), so a ratio within one run is robust to the machine's load drifting;
absolute numbers between runs are not. `impl`: `fast` is hashjax/models/dsh_net.py as is,
`reference` its plain-Flax definition (tests/test_dsh_net.py: reduce_window pools and LRN, pow).

--matrix reruns this script in subprocesses for 1 and 8 simulated devices and each XLA_FLAGS
setting of --matrix-flags (flags must be set before JAX starts), and prints one combined table.
"""

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

parser = argparse.ArgumentParser()
parser.add_argument('--devices', type=int, default=1)
parser.add_argument('--sizes', default='28,32')
parser.add_argument('--dtypes', default='float32,bfloat16')
parser.add_argument('--impls', default='reference,fast')
parser.add_argument('--batch', type=int, default=200)
parser.add_argument('--steps', type=int, default=20)
parser.add_argument('--repeats', type=int, default=3)
parser.add_argument(
  '--xla-flags', default=None, help='appended to XLA_FLAGS via benchmarks/cpu_flags.py (default: its PERFORMANCE_FLAGS)'
)
parser.add_argument('--json', action='store_true', help='print the rows as one JSON line (for --matrix)')
parser.add_argument('--matrix', action='store_true')
parser.add_argument('--matrix-devices', default='1,8')
parser.add_argument(
  '--matrix-flags', nargs='*', default=['', '--xla_cpu_use_onednn=true --xla_cpu_experimental_onednn_custom_call=true']
)
args = parser.parse_args()


def print_table(rows):
  print('\n| input | dtype | devices | XLA flags | impl | images/s | vs reference |\n|---|---|---|---|---|---|---|')
  for r in rows:
    base = next(
      (
        b['ips']
        for b in rows
        if b['impl'] == 'reference' and all(b[k] == r[k] for k in ('size', 'dtype', 'devices', 'flags'))
      ),
      None,
    )
    ratio = f'{r["ips"] / base:.2f}x' if base else '-'
    print(
      f'| {r["size"]}x{r["size"]} | {r["dtype"]} | {r["devices"]} | {r["flags"] or "-"} | {r["impl"]} '
      f'| {r["ips"]:.0f} | {ratio} |'
    )


if args.matrix:
  rows = []
  for devices in args.matrix_devices.split(','):
    for flags in args.matrix_flags:
      cmd = [
        sys.executable,
        os.path.abspath(__file__),
        '--json',
        '--devices',
        devices,
        '--xla-flags',
        flags,
        '--sizes',
        args.sizes,
        '--dtypes',
        args.dtypes,
        '--impls',
        args.impls,
        '--batch',
        str(args.batch),
        '--steps',
        str(args.steps),
        '--repeats',
        str(args.repeats),
      ]
      print('$', ' '.join(cmd[1:]), flush=True)
      out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=dict(os.environ)).stdout
      for line in out.splitlines():
        if line.startswith('{'):
          rows += json.loads(line)['rows']
        else:
          print('  ', line, flush=True)
  print_table(rows)
  sys.exit(0)

import cpu_flags  # pylint: disable=g-import-not-at-top

flag_list = cpu_flags.PERFORMANCE_FLAGS if args.xla_flags is None else args.xla_flags.split()
cpu_flags.apply_cpu_performance_flags(flag_list)

import jax  # pylint: disable=g-import-not-at-top

if args.devices > 1:
  jax.config.update('jax_num_cpu_devices', args.devices)
import numpy as np  # pylint: disable=g-import-not-at-top

from hashjax.data import pipeline  # pylint: disable=g-import-not-at-top
from hashjax.data import protocols  # pylint: disable=g-import-not-at-top
from hashjax.data import sources  # pylint: disable=g-import-not-at-top
from hashjax.models import dsh_net  # pylint: disable=g-import-not-at-top
from hashjax.train import trainer  # pylint: disable=g-import-not-at-top
from tests import helpers  # pylint: disable=g-import-not-at-top
from tests import test_dsh_net  # pylint: disable=g-import-not-at-top

FAST_CALL = dsh_net.DSHNet.__call__


def reference_call(self, x, *, train=False, rng=None):  # pylint: disable=redefined-outer-name
  del train, rng
  return test_dsh_net.reference_forward(self, x)


def fake_protocol(size, n=4000):
  rng = np.random.default_rng(0)
  split = sources.Split(
    rng.integers(0, 256, (n, size, size, 1), dtype=np.uint8), rng.integers(0, 10, n).astype(np.int32)
  )
  return protocols.build(sources.Source('random', {'train': split, 'test': split}, 10, 'random'), 'full')


settings = []
for size in map(int, args.sizes.split(',')):
  protocol = fake_protocol(size)
  for dtype in args.dtypes.split(','):
    for impl in args.impls.split(','):
      dsh_net.DSHNet.__call__ = {'fast': FAST_CALL, 'reference': reference_call}[impl]
      c = helpers.load_config('dsh')
      c.batch_size, c.model.dtype, c.num_steps, c.augment = args.batch, dtype, 1000, 'crop'
      run = trainer.build(c, protocol=protocol)
      batches = [pipeline.to_global(run.batches[i], run.data_sharding) for i in range(args.steps)]
      step = run.step_fn.lower(run.state, batches[0]).compile()  # traced while `impl` is patched in
      state, m = step(run.state, batches[0])
      jax.block_until_ready(m)
      settings.append(
        dict(
          size=size, dtype=dtype, impl=impl, step=step, state=state, batches=batches, devices=run.mesh.size, best=0.0
        )
      )
dsh_net.DSHNet.__call__ = FAST_CALL

for _ in range(args.repeats):  # interleaved rounds
  for s in settings:
    t = time.perf_counter()
    for b in s['batches']:
      s['state'], m = s['step'](s['state'], b)
    jax.block_until_ready(m)
    s['best'] = max(s['best'], args.steps * args.batch / (time.perf_counter() - t))

flags = ' '.join(flag_list)
rows = [
  dict(size=s['size'], dtype=s['dtype'], devices=s['devices'], flags=flags, impl=s['impl'], ips=s['best'])
  for s in settings
]
for r in rows:
  print(
    f'{r["size"]}x{r["size"]} {r["dtype"]} devices={r["devices"]} impl={r["impl"]} flags={flags or "-"} '
    f'batch={args.batch}: {r["ips"]:.0f} images/s (best of {args.repeats})',
    flush=True,
  )
if args.json:
  print(json.dumps(dict(rows=rows)))
else:
  print_table(rows)
