"""Tie-free statistics from per-distance counts (no sort).

Inputs are per-query histograms over Hamming distance b = 0..bits:
``n[q, b]`` items and ``r[q, b]`` relevant items at distance b. Finished on the
host in float64: they are only (nq, bits + 1) and harmonic-number differences
lose too much in float32.
"""

import numpy as np


def _harmonic(m: int) -> np.ndarray:
  """H[0..m] in float64, H[i] = sum_{p <= i} 1/p."""
  return np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, m + 1))])


def expected_ap(n: np.ndarray, r: np.ndarray) -> np.ndarray:
  """Exact expected AP@all under a uniformly random order inside each bucket.

  A bucket of n items, r relevant, after N0 items (R0 relevant) contributes
  r * (1/n) * sum_{p=1..n} (R0 + 1 + (p-1)(r-1)/(n-1)) / (N0 + p)
  = r/n * [c*n + (R0 + 1 - c*(N0 + 1)) * (H(N0 + n) - H(N0))], c = (r-1)/(n-1)
  (c = 0 if n = 1); AP = sum of contributions / R. Queries with R = 0 get 0.
  """
  n, r = n.astype(np.float64), r.astype(np.float64)
  n0 = np.cumsum(n, axis=1) - n
  r0 = np.cumsum(r, axis=1) - r
  harm = _harmonic(int(n.sum(axis=1).max()))
  c = np.where(n > 1, (r - 1) / np.maximum(n - 1, 1), 0.0)
  hdiff = harm[(n0 + n).astype(np.int64)] - harm[n0.astype(np.int64)]
  inner = c * n + (r0 + 1 - c * (n0 + 1)) * hdiff
  contrib = np.where(r > 0, r / np.maximum(n, 1) * inner, 0.0)
  total = r.sum(axis=1)
  return np.where(total > 0, contrib.sum(axis=1) / np.maximum(total, 1), 0.0)


def expected_precision_at(n: np.ndarray, r: np.ndarray, top: int) -> np.ndarray:
  """E[#relevant in the first ``top`` ranks] / top, random order in buckets."""
  n, r = n.astype(np.float64), r.astype(np.float64)
  n0 = np.cumsum(n, axis=1) - n
  taken = np.clip(top - n0, 0, n)  # items of each bucket inside the top
  hits = np.where(n > 0, taken * r / np.maximum(n, 1), 0.0).sum(axis=1)
  return hits / top
