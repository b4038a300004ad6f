"""Accelerator check (issue #37): does hashjax work on this GPU / TPU host, and how fast? One command,
built to finish in under 8 minutes on one H100/H200-class GPU or a TPU host (not run on one yet); one
markdown table and a JSON file.

  timeout 600 python benchmarks/accelerator_check.py --out accel.json   # the real run
  python benchmarks/accelerator_check.py --smoke --out smoke.json       # CPU, tiny sizes (< 90 s, 2 cores)

Sections (--sections, in this order by default), each item in a child process of its own, so that a
crash, a hang or running out of memory loses that item only; this parent process imports no JAX and
never holds the device:
  devices    jax.devices() (platform, kind, memory), jax / jaxlib versions, the host's CPUs; one small
             computation on the default device.
  tests      pytest on --tests (fast, device-relevant files) with HASHJAX_TESTS_ON_DEVICE=1 and
             JAX_PLATFORMS unset: tests/conftest.py then leaves them on the accelerator instead of 8
             simulated CPU devices (the tests that need those 8 skip).
  train      per model of --models and dtype of --dtypes (`model.dtype`, random init: no ImageNet
             weights): the real jitted train step (`hashjax.train.trainer.build` on configs/dsh.py:quick,
             DSH's pairwise loss) fed from a folder of JPEGs written here and read by the `image_folder`
             reader at `dataset.decode_size` (hashjax/data/formats/). The first step (compilation) and
             --warmup steps are not timed; then --steps steps end to end as the training loop runs them
             (hashjax/data/streaming.py: --workers decoding processes, batches put on the device ahead of
             the step; the input-wait fraction is reported) and --steps steps
             on batches already on the device (the step alone). dsh_net at --dsh_size px, batch
             --dsh_batch; the ImageNet backbones at --cnn_size px, batch --cnn_batch.
  retrieval  --nq x --db random --bits-bit codes (benchmarks/retrieval_bench.py's make_data), the same
             calls on the default device and, in a child with JAX_PLATFORMS=cpu, on this host's CPU, where
             stable ties and top-k run in the native C++ kernels (hashjax/retrieval/native.py):
             `retrieval_metrics` with ties 'stable' and 'expected' (mAP@all, mAP@--topk, P@H<=2, P@N),
             `topk_search` top --topk, and the full Hamming distance matrix, computed in blocks of
             --dm_block queries (each block written out whole, then reduced to row sums to compare);
             faiss (`IndexBinaryFlat`, `faiss.hammings`) on the CPU as well where it is installed. Time =
             the best of --repeat calls after the first (which compiles; its time is in the JSON). The
             two sides' results are compared (metrics to 1e-5, top-k indices and distance sums exactly).

--budget_s bounds the whole run: each child gets at most its cap (TIME) and the time left after the
floors of the children still to come, and what does not fit is skipped and says so. A failing item is
an ERROR row with its message, and the run goes on. After every item the JSON (--out) is rewritten
and the table printed. SIGTERM / Ctrl-C (e.g. an outer `timeout`) kills the running child and still
writes the JSON and prints the table.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ROW = '@@accelerator_check_row '  # a child's stdout line carrying one table row (JSON)

SECTIONS = ('devices', 'tests', 'train', 'retrieval')
# Seconds per child: (cap, floor). A child gets at most its cap and what is left of --budget_s after the
# floors of the children still to come, so a slow early section cannot starve all the later ones.
TIME = {
  'devices': (60, 20),
  'tests': (120, 30),
  'train': (150, 45),
  'retrieval:device': (120, 40),
  'retrieval:cpu': (120, 40),
}
DEFAULT_TESTS = (
  'tests/test_retrieval_codes.py',
  'tests/test_retrieval_metrics.py',
  'tests/test_retrieval_search.py',
  'tests/test_dsh_net.py',
  'tests/test_train_step.py',
)
# --smoke: the same run on this machine's CPU at sizes that take seconds.
# resnet18 stands in for resnet50 and vgg16 here: their builds and compiles alone take 1.5-2 min of this
# 2-core CPU (`--smoke --models dsh_net,resnet50,vgg16` runs them at 32 px: 4 min here, under load).
SMOKE = dict(
  tests='tests/test_retrieval_codes.py',
  models='dsh_net,resnet18',
  dtypes='float32',
  cnn_size=32,
  cnn_batch=8,
  dsh_batch=32,
  warmup=0,
  steps=2,
  nq=200,
  db=5000,
  topk=100,
  dm_block=100,
  repeat=2,
)


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument('--out', default='accel.json', help='the JSON file, rewritten after every item')
  p.add_argument('--smoke', action='store_true', help='CPU, tiny sizes: checks the script itself, measures nothing')
  p.add_argument('--budget_s', type=float, default=450, help='skip what does not fit in this many seconds')
  p.add_argument('--sections', default=','.join(SECTIONS), help=f'comma list, any order, of {", ".join(SECTIONS)}')
  p.add_argument('--tests', default=','.join(DEFAULT_TESTS), help='test files for the tests section')
  p.add_argument('--models', default='dsh_net,resnet50,vgg16')
  p.add_argument('--dtypes', default='float32,bfloat16')
  p.add_argument('--dsh_size', type=int, default=28)
  p.add_argument('--dsh_batch', type=int, default=200)
  p.add_argument('--cnn_size', type=int, default=224)
  p.add_argument('--cnn_batch', type=int, default=128)
  p.add_argument('--warmup', type=int, default=2, help='untimed steps after the first (compiling) one')
  p.add_argument('--steps', type=int, default=10, help='timed steps, end to end and step alone each')
  p.add_argument(
    '--workers', type=int, default=-1, help='decoding processes of the input (dataset.workers; -1: one per core)'
  )
  p.add_argument('--nq', type=int, default=10000)
  p.add_argument('--db', type=int, default=1000000)
  p.add_argument('--bits', type=int, default=64)
  p.add_argument('--topk', type=int, default=1000)
  p.add_argument('--dm_block', type=int, default=1000, help='queries per block of the distance matrix')
  p.add_argument('--repeat', type=int, default=3, help='calls per retrieval case; the first compiles')
  p.add_argument('--workdir', default='', help='JPEG folders, codes, XLA cache (default: a temporary folder)')
  p.add_argument('--child', default='', help=argparse.SUPPRESS)
  p.add_argument('--child_args', default='', help=argparse.SUPPRESS)
  a = p.parse_args(argv)
  if a.smoke:  # smoke sizes, unless given explicitly
    given = {arg.split('=')[0][2:] for arg in (argv if argv is not None else sys.argv[1:]) if arg.startswith('--')}
    for key, value in SMOKE.items():
      if key not in given:
        setattr(a, key, value)
  return a


# ----------------------------------------------------------------------------------------------------
# Children: each prints its rows as `ROW {json}` lines on stdout.


def emit(**row):
  print(ROW + json.dumps(row, default=str), flush=True)


def error_text(e: BaseException) -> str:
  text = f'{type(e).__name__}: {e}'.strip().splitlines()
  return (text[0] if text else type(e).__name__)[:300]


def gib(n) -> str:
  return f'{n / 2**30:.1f} GiB'


def _cpu_model() -> str:
  try:
    with open('/proc/cpuinfo') as f:
      return next((l.split(':', 1)[1].strip() for l in f if l.startswith('model name')), platform.processor())
  except OSError:
    return platform.processor() or platform.machine()


def child_devices(a):
  del a
  import jax
  import jax.numpy as jnp
  import jaxlib
  import numpy as np

  devices = jax.devices()
  kinds = {}
  for d in devices:
    kinds.setdefault((d.platform, d.device_kind), []).append(d)
  described, data = [], []
  for (plat, kind), ds in kinds.items():
    try:
      stats = ds[0].memory_stats() or {}
    except Exception:  # noqa: BLE001  (a backend without memory statistics)
      stats = {}
    memory = stats.get('bytes_limit')
    described.append(f'{len(ds)} x {kind} ({plat}{", " + gib(memory) + " each" if memory else ""})')
    data.append(dict(platform=plat, kind=kind, count=len(ds), bytes_limit=memory, ids=[d.id for d in ds]))
  m = np.arange(1024).reshape(32, 32) % 5  # small integers: exact in any float format, TF32 included
  check = float(jnp.sum(jnp.asarray(m, jnp.float32) @ jnp.asarray(m.T, jnp.float32)))
  ok = check == float((m @ m.T).sum())
  try:
    with open('/proc/meminfo') as f:
      host_memory = int(f.readline().split()[1]) * 1024
  except (OSError, ValueError, IndexError):
    host_memory = 0
  try:
    runtime = ' '.join(devices[0].client.platform_version.split())[:100]
  except AttributeError:
    runtime = ''
  driver = ''
  if shutil.which('nvidia-smi'):
    query = ['nvidia-smi', '--query-gpu=name,driver_version,memory.total', '--format=csv,noheader']
    try:
      driver = subprocess.run(query, capture_output=True, text=True, timeout=30).stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
      driver = ''
  emit(
    key='devices',
    section='devices',
    what='devices (`jax.devices()`)',
    device='; '.join(described),
    cpu=f'{os.cpu_count()} CPUs ({_cpu_model()}){", " + gib(host_memory) if host_memory else ""}',
    status='ok' if ok else 'error',
    notes=(
      f'default backend {jax.default_backend()}; jax {jax.__version__}, jaxlib {jaxlib.__version__}'
      f'{", " + runtime if runtime else ""}{"; nvidia-smi: " + driver if driver else ""}; '
      f'{jax.process_count()} process(es); a 32x32 matmul {"matches NumPy" if ok else "DIFFERS from NumPy"}'
    ),
    data=dict(
      devices=data,
      default_backend=jax.default_backend(),
      jax=jax.__version__,
      jaxlib=jaxlib.__version__,
      runtime=runtime,
      nvidia_smi=driver,
      python=platform.python_version(),
      host_cpus=os.cpu_count(),
      host_memory=host_memory,
      matmul_check=check,
    ),
  )


def child_tests(a):
  """pytest -v, read as it runs: if the item's time runs out first, pytest is stopped and the row says
  how many tests passed and failed before that, rather than nothing."""
  files = [f for f in a.tests.split(',') if f]
  env = dict(os.environ, HASHJAX_TESTS_ON_DEVICE='1')
  deadline = time.monotonic() + max(5.0, a.timeout_s - 8)
  t = time.perf_counter()
  proc = subprocess.Popen(
    [sys.executable, '-m', 'pytest', '-v', '-rfEs', '-p', 'no:cacheprovider', *files],
    cwd=ROOT,
    env=env,
    stdout=subprocess.PIPE,
    stderr=subprocess.STDOUT,
    text=True,
  )
  lines = []
  reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
  reader.start()
  try:
    proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    stopped = False
  except subprocess.TimeoutExpired:
    proc.kill()
    proc.wait()
    stopped = True
  reader.join(timeout=10)
  seconds = time.perf_counter() - t
  lines = [l.rstrip('\n') for l in lines]
  counts = {}
  for l in lines:  # "tests/x.py::test_y[p] PASSED  [ 5%]"
    m = re.match(r'^\S+::\S+ (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)', l)
    if m:
      counts[m.group(1).lower()] = counts.get(m.group(1).lower(), 0) + 1
  summary = next((l.strip('= ') for l in reversed(lines) if re.search(r'\d+ (passed|failed|error|skipped)', l)), '')
  if stopped or not summary:
    tally = ', '.join(f'{n} {k}' for k, n in counts.items()) or 'no test finished'
    summary = (
      f'{tally} before pytest was stopped at {seconds:.0f} s'
      if stopped
      else f'{tally}; pytest exited {proc.returncode}'
    )
  failed = [l.split(' - ')[0].split(' ', 1)[1] for l in lines if l.startswith(('FAILED ', 'ERROR '))]
  failed = failed or [l.split(' ')[0] for l in lines if re.match(r'^\S+::\S+ (FAILED|ERROR)', l)]
  skipped = [l for l in lines if l.startswith('SKIPPED ')]
  notes = f'failed: {", ".join(failed[:6])}{" ..." if len(failed) > 6 else ""}' if failed else ''
  if skipped:
    notes += ('; ' if notes else '') + f'{len(skipped)} skip line(s), e.g. {skipped[0][:160]}'
  ok = proc.returncode == 0 and not stopped
  emit(
    key='tests',
    section='tests',
    what=f'pytest {" ".join(os.path.basename(f) for f in files)}',
    device=summary + ('' if ok else ' (FAILED)' if not stopped else ' (INCOMPLETE)'),
    notes=notes or f'{seconds:.0f} s wall',
    data=dict(
      files=files,
      returncode=proc.returncode,
      stopped=stopped,
      summary=summary,
      counts=counts,
      failed=failed,
      skipped=skipped,
      seconds=seconds,
      tail='\n'.join(lines)[-6000:],
    ),
    status='ok' if ok else 'error',
  )


def jpeg_folder(workdir: str, size: int, train_images: int) -> str:
  """workdir/jpeg_<size>_<n>: train/ (n images) and test/ (10) folders of 10 class folders of JPEGs (smooth random images,
  quality 90, about the size of natural ones), written once; `image_folder`'s layout."""
  import numpy as np
  from PIL import Image

  root = os.path.join(workdir, f'jpeg_{size}_{train_images}')
  if os.path.exists(os.path.join(root, 'complete')):
    return root
  rng = np.random.default_rng(0)
  for split, n in (('train', train_images), ('test', 10)):
    for i in range(n):
      folder = os.path.join(root, split, f'class_{i % 10}')
      os.makedirs(folder, exist_ok=True)
      small = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize((size, size), Image.BICUBIC)
      pixels = np.asarray(small, np.int16) + rng.integers(-12, 13, (size, size, 3))
      Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(os.path.join(folder, f'{i:05d}.jpg'), quality=90)
  open(os.path.join(root, 'complete'), 'w').close()
  return root


def train_one(model: str, dtype: str, size: int, batch: int, folder: str, a) -> dict:
  import jax
  import numpy as np

  from hashjax.config import files as config_files
  from hashjax.data import pipeline
  from hashjax.data import streaming
  from hashjax.train import trainer

  c = config_files.load_config_file(os.path.join(ROOT, 'configs', 'dsh.py') + ':quick')
  c.dataset.name, c.dataset.data_dir, c.dataset.decode_size = 'image_folder', folder, size
  c.dataset.protocol = 'full'
  c.model.name, c.model.dtype = model, dtype
  c.image_size, c.augment, c.normalize = 0, 'none', 'imagenet'
  c.batch_size, c.num_steps = batch, 10**6
  c.dataset.workers = a.workers
  t = time.perf_counter()
  run = trainer.build(c)
  build_s = time.perf_counter() - t
  sharding, state = run.data_sharding, run.state
  host = lambda s: pipeline.to_global(run.batches[s], sharding)
  start = 1 + a.warmup
  # The training input as trainer._train reads it: decoding workers, batches put on the device ahead.
  with streaming.Feed(run.batches, 0, start + a.steps, sharding, workers=a.workers, prefetch=2) as feed:
    t = time.perf_counter()
    state, m = run.step_fn(state, next(feed))
    jax.block_until_ready(m)
    first_s = time.perf_counter() - t
    for _ in range(1, start):
      state, m = run.step_fn(state, next(feed))
    jax.block_until_ready((state, m))
    waited = feed.wait_seconds
    t = time.perf_counter()
    for _ in range(a.steps):
      state, m = run.step_fn(state, next(feed))
    jax.block_until_ready((state, m))
    e2e_s = time.perf_counter() - t
    input_wait = (feed.wait_seconds - waited) / e2e_s
    workers = feed.workers

  staged = [host(start + a.steps + i) for i in range(2)]
  jax.block_until_ready(staged)
  t = time.perf_counter()
  for i in range(a.steps):
    state, m = run.step_fn(state, staged[i % 2])
  jax.block_until_ready((state, m))
  step_s = time.perf_counter() - t

  t = time.perf_counter()
  for s in range(2):
    run.batches[s]  # decode alone (PIL on the host, one thread)
  decode_ips = 2 * batch / (time.perf_counter() - t)
  loss = float(m['loss'])
  return dict(
    model=model,
    dtype=dtype,
    size=size,
    batch=batch,
    devices=run.mesh.size,
    build_s=build_s,
    first_step_s=first_s,
    end_to_end_images_per_s=a.steps * batch / e2e_s,
    end_to_end_steps_per_s=a.steps / e2e_s,
    step_images_per_s=a.steps * batch / step_s,
    step_steps_per_s=a.steps / step_s,
    host_decode_images_per_s=decode_ips,
    input_wait_fraction=input_wait,
    workers=workers,
    final_loss=loss,
    finite=bool(np.isfinite(loss)),
  )


def child_train(a, model: str):
  dsh = model.startswith('dsh_net')
  size, batch = (a.dsh_size, a.dsh_batch) if dsh else (a.cnn_size, a.cnn_batch)
  what = lambda dtype: f'train {model}, {size} px, batch {batch}, {dtype}'
  try:
    folder = jpeg_folder(a.workdir, size, 2 * batch)
  except Exception as e:  # noqa: BLE001  (reported as a row, the run goes on)
    for dtype in a.dtypes.split(','):
      emit(key=f'train/{model}/{dtype}', section='train', what=what(dtype), device='ERROR', notes=error_text(e))
    return
  for dtype in a.dtypes.split(','):
    try:
      r = train_one(model, dtype, size, batch, folder, a)
    except Exception as e:  # noqa: BLE001
      traceback.print_exc()
      emit(key=f'train/{model}/{dtype}', section='train', what=what(dtype), device='ERROR', notes=error_text(e))
      continue
    emit(
      key=f'train/{model}/{dtype}',
      section='train',
      what=what(dtype),
      device=f'{r["end_to_end_images_per_s"]:,.0f} img/s ({r["end_to_end_steps_per_s"]:.2f} steps/s) from JPEG, '
      f'{r["workers"]} decoding workers, input wait {100 * r["input_wait_fraction"]:.0f}%',
      notes=(
        f'step alone {r["step_images_per_s"]:,.0f} img/s ({r["step_steps_per_s"]:.2f} steps/s); host JPEG decode '
        f'{r["host_decode_images_per_s"]:,.0f} img/s (1 thread); first step {r["first_step_s"]:.1f} s, build '
        f'{r["build_s"]:.1f} s; {r["devices"]} device(s); loss {"finite" if r["finite"] else "NOT FINITE"}'
      ),
      data=r,
      status='ok' if r['finite'] else 'error',
    )


def _codes(a):
  """(q_packed, q_labels, db_packed, db_labels): retrieval_bench's synthetic codes, made once per run."""
  import numpy as np

  path = os.path.join(a.workdir, f'codes_{a.nq}_{a.db}_{a.bits}.npz')
  if not os.path.exists(path):
    from retrieval_bench import make_data

    from hashjax.retrieval.codes import pack_codes

    q, ql, d, dl = make_data(a.nq, a.db, a.bits)
    tmp = path + '.tmp.npz'
    np.savez(tmp, qp=pack_codes(q), ql=ql, dp=pack_codes(d), dl=dl)
    os.replace(tmp, path)
  with np.load(path) as f:
    return f['qp'], f['ql'], f['dp'], f['dl']


def _digest(*arrays) -> str:
  import numpy as np

  h = hashlib.sha256()
  for x in arrays:
    h.update(np.ascontiguousarray(np.asarray(x)).tobytes())
  return h.hexdigest()[:16]


def child_retrieval(a, side: str):
  """side 'device' (the default backend) or 'cpu' (this child runs with JAX_PLATFORMS=cpu)."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  from retrieval_bench import _faiss_bytes
  from retrieval_bench import _timed

  from hashjax.retrieval import native
  from hashjax.retrieval.hamming import hamming_distances
  from hashjax.retrieval.metrics import retrieval_metrics
  from hashjax.retrieval.search import topk_search

  qp, ql, dp, dl = _codes(a)
  size = f'{a.nq:,} x {a.db:,}, {a.bits} bits'
  # Stable ties and top-k take the native kernels wherever they run on CPU (per_query / search 'auto').
  native_ok, why = native.available() if jax.default_backend() == 'cpu' else (False, 'not on CPU')
  fast = 'native' if native_ok else 'XLA'
  note = '' if native_ok or jax.default_backend() != 'cpu' else f'native kernels unavailable ({why}): XLA fallback'

  def stable():
    return retrieval_metrics(qp, ql, dp, dl, bits=a.bits, topk=(a.topk,), pn=(100, a.topk), ties='stable')

  def expected():
    return retrieval_metrics(qp, ql, dp, dl, bits=a.bits, topk=(a.topk,), pn=(100, a.topk), ties='expected')

  def topk():
    d, i = topk_search(qp, dp, a.topk, bits=a.bits)
    d, i = np.asarray(d), np.asarray(i)
    return dict(distance_sum=int(d.sum(dtype=np.int64)), distances=_digest(d), indices=_digest(i))

  db_on_device = jnp.asarray(dp)

  def distmat():
    sums = []
    for s in range(0, a.nq, a.dm_block):
      block = hamming_distances(jnp.asarray(qp[s : s + a.dm_block]), db_on_device)  # (block, db) int32, whole
      sums.append(jnp.sum(block, axis=1))
      del block
    sums = np.concatenate([np.asarray(x) for x in sums]).astype(np.int64)
    return dict(distance_sum=int(sums.sum()), row_sums=_digest(sums))

  cases = [
    ('stable', f'stable-tie metrics (`retrieval_metrics`), {size}', stable, fast),
    ('expected', f'expected-tie metrics, {size}', expected, 'XLA'),
    ('topk', f'`topk_search` top-{a.topk}, {size}', topk, fast),
    ('distmat', f'full distance matrix (`hamming_distances`, {a.dm_block}-query blocks), {size}', distmat, 'XLA'),
  ]
  for name, what, fn, impl in cases:
    key = f'retrieval/{name}'
    try:
      out, times = _timed(fn, max(1, a.repeat))
    except Exception as e:  # noqa: BLE001
      traceback.print_exc()
      emit(key=key, section='retrieval', what=what, **{side: 'ERROR'}, notes={side: error_text(e)})
      continue
    best = min(times[1:]) if len(times) > 1 else times[0]
    emit(
      key=key,
      section='retrieval',
      what=what,
      **{side: f'{best:.3g} s ({impl})'},
      notes={side: f'first call {times[0]:.3g} s' + (f', {note}' if note and impl == fast else '')},
      data={side: dict(seconds=times, best_s=best, impl=impl, native_why_not=why, result=out)},
    )
  if side != 'cpu':
    return
  try:
    import faiss
  except ImportError:
    emit(
      key='retrieval/faiss',
      section='retrieval',
      what='faiss',
      cpu='not installed',
      notes={'cpu': 'pip install faiss-cpu'},
    )
    return
  try:
    index = faiss.IndexBinaryFlat(a.bits)
    index.add(_faiss_bytes(dp, a.bits))
    qb, dbb = _faiss_bytes(qp, a.bits), _faiss_bytes(dp, a.bits)

    def faiss_topk():
      d, _ = index.search(qb, a.topk)
      return dict(distance_sum=int(d.sum(dtype=np.int64)), distances=_digest(d.astype(np.int32)))

    def faiss_distmat():
      out = np.empty((a.dm_block, len(dbb)), np.int32)
      sums = []
      for s in range(0, a.nq, a.dm_block):
        n = len(qb[s : s + a.dm_block])
        faiss.hammings(
          faiss.swig_ptr(qb[s : s + n]), faiss.swig_ptr(dbb), n, len(dbb), qb.shape[1], faiss.swig_ptr(out)
        )
        sums.append(out[:n].sum(1, dtype=np.int64))
      sums = np.concatenate(sums)
      return dict(distance_sum=int(sums.sum()), row_sums=_digest(sums))

    for name, fn, what in (
      (
        'topk_faiss',
        faiss_topk,
        f'faiss `IndexBinaryFlat` top-{a.topk} ({faiss.omp_get_max_threads()} threads), {size}',
      ),
      ('distmat_faiss', faiss_distmat, f'`faiss.hammings` distance matrix, {a.dm_block}-query blocks, {size}'),
    ):
      out, times = _timed(fn, max(1, a.repeat))
      best = min(times[1:]) if len(times) > 1 else times[0]
      emit(
        key=f'retrieval/{name}',
        section='retrieval',
        what=what,
        cpu=f'{best:.3g} s (faiss)',
        notes={'cpu': f'first call {times[0]:.3g} s'},
        data={'cpu': dict(seconds=times, best_s=best, impl='faiss', result=out)},
      )
  except Exception as e:  # noqa: BLE001
    traceback.print_exc()
    emit(key='retrieval/faiss', section='retrieval', what='faiss', cpu='ERROR', notes={'cpu': error_text(e)})


def run_child(a):
  sys.path.insert(0, ROOT)
  sys.path.insert(0, HERE)
  name = a.child
  if name == 'devices':
    child_devices(a)
  elif name == 'tests':
    child_tests(a)
  elif name.startswith('train:'):
    child_train(a, name.split(':', 1)[1])
  elif name.startswith('retrieval:'):
    child_retrieval(a, name.split(':', 1)[1])
  else:
    raise ValueError(f'unknown child {name!r}')


# ----------------------------------------------------------------------------------------------------
# The parent: runs the children within the budget, merges their rows, writes the JSON, prints the table.


class Report:
  """Rows by key (a row may be filled by two children: retrieval's device and CPU sides), the JSON file."""

  def __init__(self, a, started: float):
    self.a, self.started, self.rows, self.items = a, started, {}, []

  def add(self, row: dict):
    key = row['key']
    old = self.rows.setdefault(key, dict(key=key, section=row['section'], what=row['what'], notes={}, data={}))
    for field in ('device', 'cpu', 'status'):
      if field in row:
        old[field] = row[field]
    notes, data = row.get('notes', {}), row.get('data', {})
    old['notes'].update(notes if isinstance(notes, dict) else {'': notes} if notes else {})
    old['data'].update(data)  # retrieval rows: {side: ...} from each side; others: one child's dict

  def _compare(self, row: dict) -> str:
    """For a retrieval row with both sides: do the device and the CPU give the same answer? For a faiss
    row: the same distances as hashjax's on the CPU (tie order aside)?"""
    if row['key'].endswith('_faiss'):
      ours = self.rows.get(row['key'][: -len('_faiss')], {}).get('data', {}).get('cpu', {}).get('result')
      theirs = row['data'].get('cpu', {}).get('result')
      if not ours or not theirs:
        return ''
      same = all(ours.get(k) == v for k, v in theirs.items())
      return 'same distances as hashjax' if same else 'DIFFERENT distances from hashjax'
    dev, cpu = (row['data'].get(s, {}).get('result') for s in ('device', 'cpu'))
    if dev is None or cpu is None:
      return ''
    if set(dev) != set(cpu):
      return 'results: different keys'
    bad = [
      k
      for k in dev
      if (
        abs(dev[k] - cpu[k]) > 1e-5 * max(1.0, abs(cpu[k]))
        if isinstance(dev[k], float) and isinstance(cpu[k], float)
        else dev[k] != cpu[k]
      )
    ]
    if bad:
      return 'results DIFFER: ' + ', '.join(f'{k} {dev[k]} vs {cpu[k]}' for k in bad[:4])
    shown = {k: v for k, v in cpu.items() if k in ('mAP', f'mAP@{self.a.topk}', 'distance_sum')}
    return 'same results on both' + (f' ({", ".join(f"{k} {v:.6g}" for k, v in shown.items())})' if shown else '')

  def table(self) -> str:
    lines = [
      '| section | what | device | host CPU | notes |',
      '|---|---|---|---|---|',
    ]
    for row in self.rows.values():
      notes = [f'{side}: {text}' if side else text for side, text in row['notes'].items()]
      if row['key'].startswith('retrieval/'):
        compared = self._compare(row)
        notes += [compared] if compared else []
      cells = [row['section'], row['what'], row.get('device', '-'), row.get('cpu', '-'), '; '.join(notes) or '-']
      lines.append('| ' + ' | '.join(str(c).replace('|', '/').replace('\n', ' ') for c in cells) + ' |')
    return '\n'.join(lines)

  def write(self, finished: bool = False):
    doc = dict(
      command=' '.join([os.path.basename(sys.executable)] + sys.argv),
      smoke=self.a.smoke,
      started=datetime.datetime.fromtimestamp(self.started).isoformat(timespec='seconds'),
      elapsed_s=round(time.time() - self.started, 1),
      finished=finished,
      host=platform.node(),
      args={k: v for k, v in vars(self.a).items() if not k.startswith('child')},
      items=self.items,
      rows=list(self.rows.values()),
      table=self.table(),
    )
    tmp = self.a.out + '.tmp'
    with open(tmp, 'w') as f:
      json.dump(doc, f, indent=1, default=str)
    os.replace(tmp, self.a.out)


RUNNING = []  # the child being waited for, if any


class Stopped(Exception):
  """SIGTERM / SIGINT reached the parent (e.g. an outer `timeout`)."""


def _stop(signum, frame):
  """Kills the running child's process group (it must not go on holding the device), then unwinds main."""
  del frame
  for proc in RUNNING:
    try:
      os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
      pass
  raise Stopped(signal.Signals(signum).name)


def run_item(a, name: str, env: dict, timeout: float, report: Report) -> dict:
  """Runs one child; its rows go to `report` as they arrive. A crash or a timeout is an ERROR row."""
  args = dict(vars(a), child=name, timeout_s=timeout)
  cmd = [sys.executable, os.path.abspath(__file__), '--child', name, '--child_args', json.dumps(args)]
  log_path = os.path.join(a.workdir, f'{name.replace(":", "_")}.log')
  t = time.perf_counter()
  with open(log_path, 'w') as log:
    proc = subprocess.Popen(
      cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True
    )
    RUNNING[:] = [proc]
    got = []

    def read():
      for line in proc.stdout:
        if line.startswith(ROW):
          row = json.loads(line[len(ROW) :])
          got.append(row['key'])
          report.add(row)
        else:
          log.write(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
      proc.wait(timeout=timeout)
      status = 'ok' if proc.returncode == 0 else f'exit {proc.returncode}'
    except subprocess.TimeoutExpired:
      os.killpg(proc.pid, signal.SIGKILL)  # the child and what it started (pytest's own children)
      proc.wait()
      status = f'killed after {timeout:.0f} s (the budget or the cap of this item)'
    reader.join(timeout=10)
    RUNNING[:] = []
  seconds = time.perf_counter() - t
  if status != 'ok':
    with open(log_path, errors='replace') as f:
      tail = [l.strip() for l in f.read().splitlines() if l.strip()]
    last = next(
      (l for l in reversed(tail) if re.match(r'^\w*(Error|Exception)\b|^\w+Error:', l)), tail[-1] if tail else ''
    )
    report.add(
      dict(
        key=f'{name}/failure',
        section=name.split(':')[0],
        what=f'{name} (child process)',
        device='ERROR' if not name.endswith(':cpu') else '-',
        cpu='ERROR' if name.endswith(':cpu') else '-',
        notes=f'{status}; {last[:300]}; rows before it: {len(got)}; log {log_path}',
        status='error',
      )
    )
  return dict(item=name, status=status, seconds=round(seconds, 1), rows=got, log=log_path)


def items(a) -> list[str]:
  out = []
  for section in a.sections.split(','):
    if section == 'train':
      out += [f'train:{m}' for m in a.models.split(',') if m]
    elif section == 'retrieval':
      out += ['retrieval:device', 'retrieval:cpu']
    elif section in SECTIONS:
      out.append(section)
    else:
      raise SystemExit(f'unknown section {section!r}; valid: {", ".join(SECTIONS)}')
  return out


def limits(name: str) -> tuple[float, float]:
  return TIME.get(name) or TIME[name.split(':')[0]]


def child_env(a, name: str) -> dict:
  env = dict(os.environ)
  env.setdefault('JAX_COMPILATION_CACHE_DIR', os.path.join(a.workdir, 'xla_cache'))  # shared by the children
  env.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
  env.pop('JAX_PLATFORMS', None)  # the accelerator, if JAX finds one
  if a.smoke or name == 'retrieval:cpu':
    env['JAX_PLATFORMS'] = 'cpu'
  env['PYTHONPATH'] = os.pathsep.join(filter(None, [ROOT, env.get('PYTHONPATH', '')]))
  return env


def main(argv=None):
  a = parse_args(argv)
  if a.child:
    a = argparse.Namespace(**json.loads(a.child_args))
    run_child(a)
    return 0
  started = time.time()
  own_workdir = not a.workdir
  a.workdir = os.path.abspath(a.workdir or tempfile.mkdtemp(prefix='hashjax_accel_'))
  os.makedirs(a.workdir, exist_ok=True)
  a.out = os.path.abspath(a.out)
  report = Report(a, started)
  todo = items(a)
  title = (
    'Accelerator check, SMOKE RUN on CPU (tiny sizes: checks the script, measures nothing)'
    if a.smoke
    else 'Accelerator check'
  )
  print(f'{title}: {", ".join(todo)}; budget {a.budget_s:.0f} s; JSON: {a.out}', flush=True)
  previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
  stopped, name = '', ''
  try:
    for n, name in enumerate(todo):
      cap, floor = limits(name)
      left = a.budget_s - (time.time() - started) - sum(limits(later)[1] for later in todo[n + 1 :])
      if left < floor / 2:
        report.add(
          dict(
            key=f'{name}/skipped', section=name.split(':')[0], what=name, device='skipped', notes='--budget_s used up'
          )
        )
        report.items.append(dict(item=name, status='skipped (budget)'))
      else:
        print(f'\n== {name} (up to {min(cap, left):.0f} s)', flush=True)
        report.items.append(run_item(a, name, child_env(a, name), min(cap, left), report))
      report.write()
      print('\n' + report.table(), flush=True)
  except Stopped as e:
    stopped = f' STOPPED by {e} (the JSON holds what finished)'
    report.add(dict(key=f'{name}/stopped', section=name.split(':')[0], what=name, device='STOPPED', notes=str(e)))
  finally:
    for sig, handler in previous.items():
      signal.signal(sig, handler)
    report.write(finished=not stopped)
    print(f'\n{title}, {time.time() - started:.0f} s{stopped}; JSON: {a.out}\n\n{report.table()}', flush=True)
    if own_workdir:
      shutil.rmtree(a.workdir, ignore_errors=True)
  return 1 if stopped else 0


if __name__ == '__main__':
  sys.exit(main())
