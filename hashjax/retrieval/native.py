"""Native CPU kernels as XLA FFI custom calls: stable-tie statistics (kernels/stable_ap.cc) and
top-k search (kernels/topk.cc).

XLA:CPU runs the counting scan of `stable_count` as one gather and one scatter per (query, item)
pair, 8-10 ns each on this 2-core CPU. The C++ kernel fuses distance, relevance, histogram and
stable rank into one pass over the database per group of 8 queries, about 1 ns per pair on 2 cores
(benchmarks/notes/retrieval_engine.md, "native kernels rewritten"). It gives the same statistics as
`stable_count`, to float rounding: the kernel sums in float64, the XLA scan in float32 with Kahan
summation. The top-k kernel gives exactly `search.topk_search`'s answer (its histogram threshold,
then one pass that drops each item into its slot).

This module owns the kernels' build: on first use it compiles the sources with the system C++
compiler (`$CXX`, default g++) against jaxlib's FFI headers into a cache folder
(`$HASHJAX_NATIVE_CACHE`, default ~/.cache/hashjax/native), keyed by the source, the jaxlib version
and the CPU. Several processes starting at once on one host (a multi-process run, a sweep, pytest
workers) build it once: the first takes an exclusive `fcntl.flock` on `<library>.lock` in the cache
folder and compiles into a temporary file renamed into place; the others wait on the lock and load
what it built. Without a compiler `available()` is False with the reason, and the XLA code (counting
scan, two-pass top-k) is used instead; `.ci/run` sets HASHJAX_REQUIRE_NATIVE=1, under which the tests
fail rather than fall back (tests/test_retrieval_native.py).
"""

from __future__ import annotations

import ctypes
import fcntl
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile

import jax
import jax.numpy as jnp
import jaxlib
import numpy as np

KERNELS = os.path.join(os.path.dirname(__file__), 'kernels')
SOURCES = ('stable_ap.cc', 'topk.cc')
HEADERS = ('hamming.h', 'parallel.h')
# FFI target name -> the handler symbol the sources export.
TARGETS = {'hashjax_stable_ap': 'HashjaxStableAp', 'hashjax_topk': 'HashjaxTopk'}


def _cpu_id() -> str:
  try:
    with open('/proc/cpuinfo') as f:
      lines = [l for l in f if l.startswith(('model name', 'flags'))]
    return ''.join(sorted(set(lines)))
  except OSError:
    return platform.processor()


def _library_path() -> str:
  key = hashlib.sha256(jaxlib.__version__.encode() + _cpu_id().encode())
  for name in SOURCES + HEADERS:
    with open(os.path.join(KERNELS, name), 'rb') as f:
      key.update(f.read())
  cache = os.environ.get('HASHJAX_NATIVE_CACHE') or os.path.join(os.path.expanduser('~'), '.cache', 'hashjax', 'native')
  return os.path.join(cache, f'kernels_{key.hexdigest()[:16]}.so')


def _compile(path: str) -> None:
  cxx = os.environ.get('CXX', 'g++')
  if shutil.which(cxx) is None:
    raise RuntimeError(f'no C++ compiler {cxx!r} on PATH (set $CXX, or install g++)')
  os.makedirs(os.path.dirname(path), exist_ok=True)
  # Written beside its final name, then renamed: concurrent processes never load a partial file.
  fd, tmp = tempfile.mkstemp(suffix='.so', dir=os.path.dirname(path))
  os.close(fd)
  cmd = [
    cxx,
    '-O3',
    '-march=native',
    '-std=c++17',
    '-shared',
    '-fPIC',
    '-w',
    '-I',
    jax.ffi.include_dir(),
    *(os.path.join(KERNELS, name) for name in SOURCES),
    '-o',
    tmp,
    '-lpthread',
  ]
  try:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
      raise RuntimeError(f'compiling the native kernels failed ({" ".join(cmd)}):\n{done.stderr[-2000:]}')
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def _build_once(path: str) -> bool:
  """Makes sure the library `path` exists, compiling it unless it does; True if this process compiled it.

  Of several processes (on one host, or sharing the cache folder over a filesystem with working
  flock) that find it missing at once, one compiles under an exclusive lock on `path + '.lock'`; the
  others block on the lock, then find the file and compile nothing. The lock file stays (removing it
  would let a late process lock a different inode); the lock is released when its holder exits,
  even by a crash, so a killed build never blocks the next one.
  """
  if os.path.exists(path):
    return False
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path + '.lock', 'a') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
      if os.path.exists(path):  # built by the process that held the lock before this one
        return False
      _compile(path)
      return True
    finally:
      fcntl.flock(lock, fcntl.LOCK_UN)


@functools.cache
def _load() -> str | None:
  """Compiles (once per cache key and host), loads and registers the kernels; the reason on failure."""
  if jax.default_backend() != 'cpu':
    return f'the kernel is for CPU; the default backend is {jax.default_backend()!r}'
  try:
    path = _library_path()
    _build_once(path)
    library = ctypes.cdll.LoadLibrary(path)
    for target, symbol in TARGETS.items():
      jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(getattr(library, symbol)), platform='cpu')
  except (OSError, RuntimeError, subprocess.SubprocessError) as e:
    return str(e)
  return None


def available() -> tuple[bool, str]:
  """(True, '') when the kernels are compiled and registered, else (False, why not)."""
  why = _load()
  return why is None, why or ''


def pack_labels(labels: np.ndarray, num_classes: int) -> np.ndarray:
  """(n,) class ids or (n, C) multi-hot -> (n, ceil(C / 32)) uint32 words, bit c = label c."""
  labels = np.asarray(labels)
  words = np.zeros((len(labels), -(-num_classes // 32)), np.uint32)
  if labels.ndim == 1:  # one bit per row: no (n, C) intermediate
    ids = labels.astype(np.int64)
    words[np.arange(len(ids)), ids // 32] = np.left_shift(np.uint32(1), (ids % 32).astype(np.uint32))
    return words
  hot = labels[:, :num_classes] != 0
  for w in range(words.shape[1]):
    block = hot[:, 32 * w : 32 * (w + 1)]
    words[:, w] = (block.astype(np.uint32) << np.arange(block.shape[1], dtype=np.uint32)).sum(-1, dtype=np.uint32)
  return words


def _threads() -> int:
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:
    return os.cpu_count() or 1


@functools.partial(jax.jit, static_argnames=('bins', 'ks', 'pns', 'threads'))
def _call(q_packed, q_words, db_packed, db_words, *, bins, ks, pns, threads):
  nq = q_packed.shape[0]
  shapes = (
    jax.ShapeDtypeStruct((nq, bins), jnp.int32),
    jax.ShapeDtypeStruct((nq, bins), jnp.int32),
    jax.ShapeDtypeStruct((nq,), jnp.float32),
    jax.ShapeDtypeStruct((nq, len(ks)), jnp.float32),
    jax.ShapeDtypeStruct((nq, len(ks)), jnp.int32),
    jax.ShapeDtypeStruct((nq, len(pns)), jnp.int32),
  )
  return jax.ffi.ffi_call('hashjax_stable_ap', shapes)(
    q_packed,
    q_words,
    db_packed,
    db_words,
    ks=np.array(ks, np.int64),
    pns=np.array(pns, np.int64),
    threads=np.int64(threads),
  )


def _require():
  ok, why = available()
  if not ok:
    raise RuntimeError(
      f"the native kernels are unavailable: {why}. Use stable_impl='count' / topk_search(..., impl='xla') instead."
    )


# The stable kernel's counters hold 24-bit counts (kernels/stable_ap.cc).
STABLE_MAX_DB = 2**24 - 1


def stable_stats(q_packed, q_labels, db_packed, db_labels, *, bits: int, ks=(), pns=()) -> dict:
  """Per-query 'hist_all', 'hist_rel' ((nq, bits + 1)), 'ap', 'ap@K', 'n_rel@K', 'hits@N'
  under stable ties, the keys of per_query's counting path. Labels as `validate.check_labels`."""
  _require()
  if len(db_packed) > STABLE_MAX_DB:
    raise ValueError(
      f'the native stable kernel takes up to {STABLE_MAX_DB} database codes, got '
      f"{len(db_packed)}; use stable_impl='count' (or shard the database over a mesh)"
    )
  num_classes = (
    int(max(np.max(q_labels, initial=0), np.max(db_labels, initial=0)) + 1)
    if np.ndim(q_labels) == 1
    else int(np.shape(q_labels)[1])
  )
  ks, pns = tuple(int(k) for k in ks), tuple(int(m) for m in pns)
  hist_all, hist_rel, ap, ap_k, n_rel_k, hits_n = _call(
    np.asarray(q_packed, np.uint32),
    pack_labels(q_labels, num_classes),
    np.asarray(db_packed, np.uint32),
    pack_labels(db_labels, num_classes),
    bins=bits + 1,
    ks=ks,
    pns=pns,
    threads=_threads(),
  )
  out = {'hist_all': hist_all, 'hist_rel': hist_rel, 'ap': ap}
  for i, k in enumerate(ks):
    out[f'ap@{k}'], out[f'n_rel@{k}'] = ap_k[:, i], n_rel_k[:, i]
  for i, m in enumerate(pns):
    out[f'hits@{m}'] = hits_n[:, i]
  return out


@functools.partial(jax.jit, static_argnames=('k', 'threads'))
def _call_topk(q_packed, db_packed, *, k, threads):
  shape = jax.ShapeDtypeStruct((q_packed.shape[0], k), jnp.int32)
  return jax.ffi.ffi_call('hashjax_topk', (shape, shape))(q_packed, db_packed, threads=np.int64(threads))


def topk(q_packed, db_packed, k: int):
  """(distances, indices) int32 (nq, k) of the k nearest codes: ascending distance, ties by index."""
  _require()
  return _call_topk(np.asarray(q_packed, np.uint32), np.asarray(db_packed, np.uint32), k=int(k), threads=_threads())
