"""Tie-free statistics from per-distance counts (no sort).

Inputs are per-query histograms over Hamming distance b = 0..bits:
``n[q, b]`` items and ``r[q, b]`` relevant items at distance b. Finished on the
host in float64: they are only (nq, bits + 1) and harmonic-number differences
lose too much in float32.
"""

import numpy as np
import scipy.special


def _harmonic(m: int) -> np.ndarray:
  """H[0..m] in float64, H[i] = sum_{p <= i} 1/p."""
  return np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, m + 1))])


def _bucket_sum(r, n, r0, n0, harm):
  """E[sum of P@k over the relevant items of a bucket] (n items, r relevant, after n0 items, r0
  relevant), uniformly random order inside it: a relevant item at position p has rank n0 + p and
  expected relevant rank r0 + 1 + (p - 1)(r - 1)/(n - 1), so the sum is
  r/n * sum_{p=1..n} (r0 + 1 + (p-1) c) / (n0 + p) = r/n * [c n + (r0 + 1 - c (n0 + 1)) (H(n0 + n) - H(n0))],
  c = (r - 1)/(n - 1) (0 if n = 1). Elementwise over arrays; 0 where r = 0."""
  c = np.where(n > 1, (r - 1) / np.maximum(n - 1, 1), 0.0)
  hdiff = harm[(n0 + n).astype(np.int64)] - harm[n0.astype(np.int64)]
  return np.where(r > 0, r / np.maximum(n, 1) * (c * n + (r0 + 1 - c * (n0 + 1)) * hdiff), 0.0)


def _before(x: np.ndarray) -> np.ndarray:
  """Exclusive prefix sums along the buckets: the items (or relevant items) at smaller distances."""
  return np.cumsum(x, axis=1) - x


def expected_ap(n: np.ndarray, r: np.ndarray) -> np.ndarray:
  """Exact expected AP@all under a uniformly random order inside each bucket: the buckets'
  `_bucket_sum`s over R. Queries with R = 0 get 0."""
  n, r = n.astype(np.float64), r.astype(np.float64)
  harm = _harmonic(int(n.sum(axis=1).max()))
  contrib = _bucket_sum(r, n, _before(r), _before(n), harm)
  total = r.sum(axis=1)
  return np.where(total > 0, contrib.sum(axis=1) / np.maximum(total, 1), 0.0)


def expected_precision_at(n: np.ndarray, r: np.ndarray, top: int) -> np.ndarray:
  """E[#relevant in the first ``top`` ranks] / top, random order in buckets."""
  n, r = n.astype(np.float64), r.astype(np.float64)
  taken = np.clip(top - _before(n), 0, n)  # items of each bucket inside the top
  hits = np.where(n > 0, taken * r / np.maximum(n, 1), 0.0).sum(axis=1)
  return hits / top


def expected_ap_at(n: np.ndarray, r: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray]:
  """(E[AP@top], E[#relevant in the top]) under a uniformly random order inside each bucket.

  AP@K = S / H, S = sum_{k<=K} P@k rel_k, H = #relevant in the top K (0 if H = 0). Buckets before
  the cut bucket t (the one holding rank K) are whole: their part of S is independent of the order
  inside t, with the expectation of `expected_ap`'s contributions. Of bucket t (n_t items, r_t
  relevant, N0 before it) the first m = K - N0 are taken; X, the relevant items among them, is
  hypergeometric, and given X = x they sit on a uniformly random x-subset of the m slots, so their
  part of S is the same bucket formula with (n, r) -> (m, x). Hence, exactly,
  E[AP@K] = sum_x P(X = x) (E[S_before] + E[S_t | x]) / (R0_t + x),   a term with R0_t + x = 0 being 0.
  """
  n, r = n.astype(np.float64), r.astype(np.float64)
  total = n.sum(axis=1)
  k = np.minimum(top, total)  # K beyond the database: the whole database
  n0, r0 = _before(n), _before(r)
  t = np.minimum(np.sum(n0 + n < k[:, None], axis=1), n.shape[1] - 1)  # the cut bucket
  rows = np.arange(n.shape[0])
  nt, rt, n0t, r0t = n[rows, t], r[rows, t], n0[rows, t], r0[rows, t]
  m = k - n0t  # items taken from bucket t: 1..nt
  harm = _harmonic(int(total.max()))
  whole = np.arange(n.shape[1])[None, :] < t[:, None]
  s_before = np.where(whole, _bucket_sum(r, n, r0, n0, harm), 0.0).sum(axis=1)
  log_fact = scipy.special.gammaln(np.arange(int(total.max()) + 2, dtype=np.float64) + 1)
  ap, hits = np.zeros(len(n)), np.zeros(len(n))
  # X's support: lo = max(0, m - (n_t - r_t)) .. hi = min(r_t, m), at most K + 1 values. Blocks of
  # 4096 queries in order of support width, each as wide as its widest: the work is ~ sum of widths.
  lo = np.maximum(0, m - (nt - rt))
  widths = (np.minimum(rt, m) - lo).astype(np.int64) + 1
  order = np.argsort(widths, kind='stable')
  for start in range(0, len(order), 4096):
    b = order[start : start + 4096]
    ap[b], hits[b] = _cut_bucket_terms(
      nt[b, None],
      rt[b, None],
      m[b, None],
      n0t[b, None],
      r0t[b, None],
      s_before[b, None],
      lo[b, None],
      int(widths[b].max()),
      harm,
      log_fact,
    )
  return ap, hits


def _cut_bucket_terms(nt, rt, m, n0t, r0t, s_before, lo, width, harm, log_fact):
  """E[AP@K] and E[H] over x = lo..lo+width-1 relevant items among the m taken of the cut bucket
  ((block, 1) columns). The hypergeometric P(X = x) comes from a log-factorial table (scipy.stats'
  pmf is about 100x slower here)."""
  x = lo + np.arange(width, dtype=np.float64)[None, :]
  support = x <= np.minimum(rt, m)
  lf = lambda v: log_fact[v.astype(np.int64)]
  fixed = lf(rt) + lf(nt - rt) + lf(m) + lf(nt - m) - lf(nt)  # log C(rt, x) C(nt-rt, m-x) / C(nt, m)
  lf_x = lambda v: log_fact[np.where(support, v, 0).astype(np.int64)]
  log_pmf = fixed - lf_x(x) - lf_x(rt - x) - lf_x(m - x) - lf_x(nt - rt - m + x)
  pmf = np.where(support, np.exp(np.where(support, log_pmf, -np.inf)), 0.0)
  s_t = _bucket_sum(x, m, r0t, n0t, harm)
  hits = r0t + x
  ap = np.where(hits > 0, pmf * (s_before + s_t) / np.maximum(hits, 1), 0.0).sum(axis=1)
  return ap, r0t[:, 0] + (pmf * x).sum(axis=1)
