"""Stable-tie AP@all, AP@K and P@N by counting, without sorting.

Counting sort in one pass: with n_b items and r_b relevant items at distance b
(a histogram pass), the stable rank of item j (distance b = d_j, scanned in
index order) is pos_j = N0_b + (#items at distance b up to j), and the number
of relevant items ranked at or before it is rr_j = R0_b + (#relevant at
distance b up to j), with N0_b, R0_b the counts at distances < b. So
  AP@all = (1/R) sum_{j rel} rr_j / pos_j,
  AP@K   = sum_{j rel, pos_j <= K} rr_j / pos_j / #{j rel, pos_j <= K},
  P@N    = #{j rel, pos_j <= N} / N.
The database is scanned in order with all queries of a chunk as vector lanes;
each step gathers and bumps one (pos, rr) counter pair per query. O(ndb) per
query with no sort; on CPU (10k x 60k, 64 bits) 1.6x faster than sort +
cumsum. Sequential over the database, so accelerators should prefer the sort.
"""

from jax import lax
import jax.numpy as jnp


def _kahan(acc, x):
  s, c = acc
  y = x - c
  t = s + y
  return t, (t - s) - y


def counting_sums(
  q_packed,
  q_labels,
  db_packed,
  db_labels,
  hist_all,
  hist_rel,
  ks,
  pns,
  unroll: int | None = None,
  *,
  before=None,
  valid=None,
  db_size: int | None = None,
) -> dict:
  """The counting scan's raw per-query sums: 'ap_sum' (sum of rr/pos over the relevant items),
  'ap_sum@K', 'n_rel@K', 'hits@N'; traceable.

  hist_all, hist_rel: (cq, bits + 1) per-distance counts over the whole database.
  For one slice of a database split in contiguous slices (retrieval.db_sharded): before = (items,
  relevant items) (cq, bits + 1) at each distance in the earlier slices; valid: (n,) bool, False
  for padding rows (never relevant; they must come last); db_size: the whole database's size
  (default: this slice's). Summing the slices' sums gives the whole database's.
  unroll: scan unroll; default 4 for long scans (~20% faster on CPU), 1 for short ones (compiles
  faster).
  """
  if unroll is None:
    unroll = 4 if db_packed.shape[0] >= 16384 else 1
  cq, nb = hist_all.shape
  base = jnp.arange(cq, dtype=jnp.int32) * nb
  # Flat counters [q * nb + b]: items / relevant items ranked before the next
  # item at distance b. Flat, unique indices: XLA's fastest gather/scatter.
  start_all, start_rel = jnp.cumsum(hist_all, 1) - hist_all, jnp.cumsum(hist_rel, 1) - hist_rel
  if before is not None:
    start_all, start_rel = start_all + before[0], start_rel + before[1]
  start = (start_all.ravel(), start_rel.ravel())
  # Small databases: both counts fit 16 bits; one uint32 word per counter
  # halves the gathers and scatters (the cost of the scan on CPU). Padding rows
  # come after every real row, so their overflow touches no real rank.
  packed16 = (db_size or db_packed.shape[0]) < 2**16
  if packed16:
    start = (start[0].astype(jnp.uint32) | (start[1].astype(jnp.uint32) << 16),)
  zero = jnp.zeros(cq, jnp.float32)
  izero = jnp.zeros(cq, jnp.int32)
  init = (start, (zero, zero), tuple((zero, zero) for _ in ks), tuple(izero for _ in ks), tuple(izero for _ in pns))

  def step(carry, item):
    counters, ap, apk, hitk, hitn = carry
    code, label = item[:2]
    d = jnp.sum(lax.population_count(q_packed ^ code[None, :]).astype(jnp.int32), axis=-1)
    if q_labels.ndim == 1:
      rel = q_labels == label
    else:
      rel = jnp.dot(q_labels, label) > 0
    if valid is not None:
      rel = rel & item[2]
    reli = rel.astype(jnp.int32)
    idx = base + d
    take = dict(indices_are_sorted=True, unique_indices=True)
    if packed16:
      cur = counters[0].at[idx].get(**take) + (1 + (reli.astype(jnp.uint32) << 16))
      counters = (counters[0].at[idx].set(cur, **take),)
      pos = (cur & 0xFFFF).astype(jnp.int32)
      rr = (cur >> 16).astype(jnp.int32)
    else:
      pos = counters[0].at[idx].get(**take) + 1
      rr = counters[1].at[idx].get(**take) + reli
      counters = (counters[0].at[idx].set(pos, **take), counters[1].at[idx].set(rr, **take))
    gain = jnp.where(rel, rr.astype(jnp.float32) / pos.astype(jnp.float32), 0.0)
    ap = _kahan(ap, gain)
    apk = tuple(_kahan(a, jnp.where(pos <= k, gain, 0.0)) for a, k in zip(apk, ks))
    hitk = tuple(h + (reli * (pos <= k)) for h, k in zip(hitk, ks))
    hitn = tuple(h + (reli * (pos <= n)) for h, n in zip(hitn, pns))
    return (counters, ap, apk, hitk, hitn), None

  items = (db_packed, db_labels) if valid is None else (db_packed, db_labels, valid)
  (_, ap, apk, hitk, hitn), _ = lax.scan(step, init, items, unroll=unroll)
  out = {'ap_sum': ap[0]}
  for k, a, h in zip(ks, apk, hitk):
    out[f'ap_sum@{k}'], out[f'n_rel@{k}'] = a[0], h
  for n, h in zip(pns, hitn):
    out[f'hits@{n}'] = h  # P@N = hits / N, divided on the host in float64
  return out


def finish_counting(sums: dict, hist_rel, ks, pns) -> dict:
  """Per-query 'ap', 'n_rel', 'ap@K', 'n_rel@K', 'hits@N' from `counting_sums`' sums."""
  total = jnp.sum(hist_rel, axis=1)
  out = {'ap': sums['ap_sum'] / jnp.maximum(total, 1), 'n_rel': total}
  for k in ks:
    out[f'ap@{k}'] = sums[f'ap_sum@{k}'] / jnp.maximum(sums[f'n_rel@{k}'], 1)
    out[f'n_rel@{k}'] = sums[f'n_rel@{k}']
  for n in pns:
    out[f'hits@{n}'] = sums[f'hits@{n}']
  return out


def stable_counting_stats(
  q_packed, q_labels, db_packed, db_labels, hist_all, hist_rel, ks, pns, unroll: int | None = None
) -> dict:
  """Per-query 'ap', 'ap@K', 'n_rel@K', 'hits@N' (stable ties) of the whole database; traceable.

  hist_all, hist_rel: (cq, bits + 1) per-distance counts for these queries.
  """
  sums = counting_sums(q_packed, q_labels, db_packed, db_labels, hist_all, hist_rel, ks, pns, unroll)
  return finish_counting(sums, hist_rel, ks, pns)
