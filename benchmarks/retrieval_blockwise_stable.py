"""An alternative to the counting scan for exact stable-tie AP (benchmarks/notes/retrieval_engine.md,
"What did not help"): the database in blocks of T items, the within-bucket rank of each item from a
T x T equal-distance comparison instead of one sequential counter update per item, per-bucket
counters carried across blocks (one-hot sums or a scatter-add). Same numbers as the scan (max |diff|
~1e-7), slower on CPU.

  python benchmarks/retrieval_blockwise_stable.py NQ NDB      # e.g. 256 20000
"""

import functools
import sys
import time

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np

sys.path.insert(
  0, __import__('os').path.dirname(__import__('os').path.dirname(__import__('os').path.abspath(__file__)))
)
from hashjax.retrieval import codes as C
from hashjax.retrieval.stable_count import stable_counting_stats


def stable_block_stats(q_packed, q_labels, db_packed, db_labels, hist_all, hist_rel, ks, pns, block=64, hist='onehot'):
  cq, nb = hist_all.shape
  n, w = db_packed.shape
  pad = (-n) % block
  valid = jnp.arange(n + pad) < n
  dbp = jnp.pad(db_packed, ((0, pad), (0, 0))).reshape(-1, block, w)
  dbl = jnp.pad(db_labels, ((0, pad),) + ((0, 0),) * (db_labels.ndim - 1)).reshape((-1, block) + db_labels.shape[1:])
  tri = jnp.tri(block, dtype=bool)  # [j, i]: i <= j
  cnt_n = jnp.cumsum(hist_all, 1) - hist_all
  cnt_r = jnp.cumsum(hist_rel, 1) - hist_rel
  zero = jnp.zeros(cq, jnp.float32)
  izero = jnp.zeros(cq, jnp.int32)
  init = (
    cnt_n,
    cnt_r,
    (zero, zero),
    tuple((zero, zero) for _ in ks),
    tuple(izero for _ in ks),
    tuple(izero for _ in pns),
  )
  buckets = jnp.arange(nb, dtype=jnp.int32)

  def kahan(acc, x):
    s, c = acc
    y = x - c
    t = s + y
    return t, (t - s) - y

  def step(carry, blk):
    cnt_n, cnt_r, ap, apk, hitk, hitn = carry
    codes, labels, ok = blk
    d = jnp.sum(lax.population_count(q_packed[:, None, :] ^ codes[None]).astype(jnp.int32), -1)
    rel = (q_labels[:, None] == labels[None, :]) & ok[None]
    eq = (d[:, :, None] == d[:, None, :]) & tri[None]
    n_in = jnp.sum(eq, -1, dtype=jnp.int32)
    r_in = jnp.sum(eq & rel[:, None, :], -1, dtype=jnp.int32)
    pos = jnp.take_along_axis(cnt_n, d, 1) + n_in
    rr = jnp.take_along_axis(cnt_r, d, 1) + r_in
    g = jnp.where(rel, rr.astype(jnp.float32) / pos.astype(jnp.float32), 0.0)
    ap = kahan(ap, jnp.sum(g, 1))
    apk = tuple(kahan(a, jnp.sum(jnp.where(pos <= k, g, 0.0), 1)) for a, k in zip(apk, ks))
    reli = rel.astype(jnp.int32)
    hitk = tuple(h + jnp.sum(reli * (pos <= k), 1) for h, k in zip(hitk, ks))
    hitn = tuple(h + jnp.sum(reli * (pos <= m), 1) for h, m in zip(hitn, pns))
    if hist == 'onehot':
      oh = (d[:, :, None] == buckets) & ok[None, :, None]
      cnt_n = cnt_n + jnp.sum(oh, 1, dtype=jnp.int32)
      cnt_r = cnt_r + jnp.sum(oh & rel[:, :, None], 1, dtype=jnp.int32)
    else:
      rows = jnp.arange(cq)[:, None]
      cnt_n = cnt_n.at[rows, d].add(ok[None].astype(jnp.int32))
      cnt_r = cnt_r.at[rows, d].add(reli)
    return (cnt_n, cnt_r, ap, apk, hitk, hitn), None

  (_, _, ap, apk, hitk, hitn), _ = lax.scan(step, init, (dbp, dbl, valid.reshape(-1, block)))
  total = jnp.sum(hist_rel, 1)
  out = {'ap': ap[0] / jnp.maximum(total, 1)}
  for k, a, h in zip(ks, apk, hitk):
    out[f'ap@{k}'] = a[0] / jnp.maximum(h, 1)
  for m, h in zip(pns, hitn):
    out[f'hits@{m}'] = h
  return out


rng = np.random.default_rng(0)
nq, ndb, bits = int(sys.argv[1]), int(sys.argv[2]), 64
centers = rng.choice([-1, 1], (10, bits))


def make(n):
  y = rng.integers(0, 10, n)
  x = centers[y] * np.where(rng.random((n, bits)) < 0.25, -1, 1)
  return x.astype(np.float32), y.astype(np.int32)


q, ql = make(nq)
db, dl = make(ndb)
qp, dp = jnp.asarray(C.pack_codes(q)), jnp.asarray(C.pack_codes(db))
d = ((bits - q @ db.T) / 2).astype(np.int32)
rel = ql[:, None] == dl[None]
ha = np.stack([np.bincount(r, minlength=bits + 1) for r in d]).astype(np.int32)
hr = np.stack([np.bincount(r[m], minlength=bits + 1) for r, m in zip(d, rel)]).astype(np.int32)
ql_, dl_ = jnp.asarray(ql), jnp.asarray(dl)
ks, pns = (1000,), (100, 1000)
fns = {'scan': jax.jit(lambda *a: stable_counting_stats(*a, ks, pns))}
for T in (32, 64, 128):
  for h in ('onehot', 'scatter'):
    fns[f'block{T}_{h}'] = jax.jit(
      functools.partial(lambda *a, T=T, h=h: stable_block_stats(*a, ks, pns, block=T, hist=h))
    )
ref = None
for name, f in fns.items():
  out = jax.block_until_ready(f(qp, ql_, dp, dl_, ha, hr))
  t = time.perf_counter()
  out = jax.block_until_ready(f(qp, ql_, dp, dl_, ha, hr))
  t = time.perf_counter() - t
  if ref is None:
    ref = out
  err = max(float(jnp.max(jnp.abs(out[k] - ref[k]))) for k in ref if k in out)
  print(f'{name:16s} {t:7.3f} s  mAP {float(out["ap"].mean()):.8f}  max|diff| {err:.2e}', flush=True)
