"""Retrieval metrics of packed binary codes (Hamming ranking).

Definitions (notation of shared/reference/evaluation.md): pi = database ranked
by ascending Hamming distance (tie order: ``ties``, see ``per_query``);
rel_k = relevance of the item at rank k; P@k = (1/k) sum_{i<=k} rel_i.

  mAP       mean over queries of AP@all = sum_k P@k rel_k / R_q, R_q = #relevant.
  mAP@K     AP@K = sum_{k<=K} P@k rel_k / sum_{k<=K} rel_k (hashing convention:
            normalised by the relevant items inside the top K; 0 if none).
            K > database size means K = database size.
  P@H<=r    |S ∩ Rel| / |S|, S = {j : d(q, j) <= r}; an empty ball scores 0.
  R@H<=r    |S ∩ Rel| / R_q.
  P@N       (1/N) sum_{i<=min(N, n_db)} rel_i.

``zero_relevant``: with "zero" every query counts (a zero denominator gives 0);
with "drop" a query is left out of a metric's mean when that metric's
relevant-item normaliser is 0: R_q for mAP and R@H<=r, the hits in the top K for
mAP@K (as thuml/DeepHash ``get_mAPs``). Precision metrics keep every query. A
mean over no query is NaN.
"""

import jax
import jax.numpy as jnp
import numpy as np

from hashjax.retrieval import validate
from hashjax.retrieval.db_sharded import db_sharded_stats
from hashjax.retrieval.per_query import _ranked_stats
from hashjax.retrieval.per_query import per_query_stats

TIES = ('stable', 'numpy', 'expected')


def _as_tuple(x) -> tuple:
  if x is None:
    return ()
  if isinstance(x, (int, np.integer)):
    return (int(x),)
  return tuple(int(v) for v in x)


def _mean(values: np.ndarray, keep: np.ndarray | None) -> float:
  values = np.asarray(values, np.float64)
  values = values if keep is None else values[keep]
  return float(np.mean(values)) if len(values) else float('nan')


def check_inputs(query_codes, query_labels, db_codes, db_labels, bits: int):
  """Validates and converts; returns (qc, ql, dc, dl) as NumPy arrays."""
  if not isinstance(bits, (int, np.integer)) or bits < 1:
    raise ValueError(f'bits must be a positive int, got {bits!r}')
  qc = validate.check_packed(query_codes, 'query_codes', bits)
  dc = validate.check_packed(db_codes, 'db_codes', bits)
  ql = validate.check_labels(query_labels, 'query_labels', len(qc))
  dl = validate.check_labels(db_labels, 'db_labels', len(dc))
  validate.check_pair(ql, dl)
  return qc, ql, dc, dl


def unique_queries(codes: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(codes, labels, inverse) of the distinct (code, label) queries, rows[inverse] = the input.

  Two queries with the same code and labels have the same distance row and relevance row, hence the
  same ranking under every tie rule (stable and numpy orders are deterministic functions of the
  row) and the same statistics: each distinct query is ranked once. Trained codes repeat a lot (a
  class-center method gives few distinct codes per class), random ones hardly at all.
  """
  n = len(codes)
  rows = np.concatenate(
    [
      np.ascontiguousarray(codes).view(np.uint8).reshape(n, -1),
      np.ascontiguousarray(labels).view(np.uint8).reshape(n, -1),
    ],
    axis=1,
  )
  _, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
  return codes[first], labels[first], inverse.reshape(n)


def retrieval_metrics(
  query_codes,
  query_labels,
  db_codes,
  db_labels,
  *,
  bits: int,
  topk=(),
  radius: int = 2,
  pn=(),
  ties: str = 'stable',
  zero_relevant: str = 'zero',
  query_chunk: int | None = None,
  mesh: jax.sharding.Mesh | None = None,
  axis: str = 'db',
) -> dict[str, float]:
  """Hamming-ranking metrics of packed uint32 codes (definitions: module doc).

  Returns {"mAP", "mAP@K" per K in topk, "P@H<=r", "R@H<=r", "P@N" per N in pn}. Repeated
  (code, label) queries are ranked once (`unique_queries`).
  ties="expected" gives every metric's expectation over a random order inside each distance
  bucket (mAP@K exactly too: retrieval.expected); with zero_relevant="drop" it drops a query
  from mAP@K only when no order puts a relevant item in its top K.
  mesh: split the database over its `axis` devices (retrieval.db_sharded; ties stable or
  expected): the same metrics, memory per device ~ its slice.
  """
  qc, ql, dc, dl = check_inputs(query_codes, query_labels, db_codes, db_labels, bits)
  ks, pns = _as_tuple(topk), _as_tuple(pn)
  if any(k < 1 for k in ks + pns):
    raise ValueError(f'topk and pn must be >= 1, got {ks} and {pns}')
  if not isinstance(radius, (int, np.integer)) or radius < 0:
    raise ValueError(f'radius must be an int >= 0, got {radius!r}')
  if ties not in TIES:
    raise ValueError(f'ties must be one of {TIES}, got {ties!r}')
  if zero_relevant not in ('zero', 'drop'):
    raise ValueError(f"zero_relevant must be 'zero' or 'drop', got {zero_relevant!r}")
  if query_chunk is not None and query_chunk < 1:
    raise ValueError(f'query_chunk must be >= 1, got {query_chunk}')

  uq, uql, inverse = unique_queries(qc, ql)
  if mesh is None:
    s = per_query_stats(uq, uql, dc, dl, bits=bits, ks=ks, pns=pns, radius=radius, ties=ties, chunk=query_chunk)
  else:
    s = db_sharded_stats(
      uq, uql, dc, dl, bits=bits, mesh=mesh, axis=axis, ks=ks, pns=pns, radius=radius, ties=ties, chunk=query_chunk
    )
  s = {key: value[inverse] for key, value in s.items()}
  drop = zero_relevant == 'drop'
  has_rel = s['n_rel'] > 0
  out = {'mAP': _mean(s['ap'], has_rel if drop else None)}
  for k in ks:
    out[f'mAP@{k}'] = _mean(s[f'ap@{k}'], s[f'n_rel@{k}'] > 0 if drop else None)
  ball, ball_rel = s['ball'], s['ball_rel']
  out[f'P@H<={radius}'] = _mean(ball_rel / np.maximum(ball, 1), None)
  out[f'R@H<={radius}'] = _mean(ball_rel / np.maximum(s['n_rel'], 1), has_rel if drop else None)
  for m in pns:
    out[f'P@{m}'] = _mean(s[f'p@{m}'], None)
  return out


def mean_average_precision(
  query_codes, query_labels, db_codes, db_labels, *, bits: int, topk: int | None = None, **kw
) -> float:
  """mAP@all (topk=None) or mAP@topk; keyword args as ``retrieval_metrics``."""
  m = retrieval_metrics(
    query_codes, query_labels, db_codes, db_labels, bits=bits, topk=() if topk is None else (topk,), **kw
  )
  return m['mAP' if topk is None else f'mAP@{topk}']


@jax.jit
def _ranked_relevance(q_labels, ranked_labels):
  if q_labels.ndim == 1:
    return (ranked_labels == q_labels[:, None]).astype(jnp.int32)
  return (jnp.einsum('qc,qnc->qn', q_labels, ranked_labels) > 0).astype(jnp.int32)


def ranked_list_metrics(query_labels, ranked_labels, *, topk=(), pn=()) -> dict[str, float]:
  """mAP@K and P@N (definitions: module doc) of rankings given as lists, e.g. re-ranked ones
  (retrieval.coarse_to_fine) rather than sorted by Hamming distance.

  ranked_labels: (nq, n) class ids or (nq, n, C) multi-hot, the labels of each query's first n
  retrieved items in rank order; every K and N must be <= n (the items beyond are unknown).
  Returns {"mAP@K" per K in topk, "P@N" per N in pn}; every query counts ("zero").
  """
  ranked_labels = np.asarray(ranked_labels)
  ql = validate.check_labels(query_labels, 'query_labels', len(ranked_labels))
  if ranked_labels.ndim != ql.ndim + 1:
    raise ValueError(
      f'ranked_labels {ranked_labels.shape} must be (nq, n) class ids or (nq, n, C) '
      f'multi-hot, as query_labels {ql.shape}'
    )
  n = ranked_labels.shape[1]
  ks, pns = _as_tuple(topk), _as_tuple(pn)
  if any(not 1 <= k <= n for k in ks + pns):
    raise ValueError(f'topk and pn must be in [1, {n}] (the ranked list length), got {ks} and {pns}')
  rl = ranked_labels.astype(ql.dtype if ql.ndim == 1 else np.float32)
  s = _ranked_stats(_ranked_relevance(ql, rl), ks, pns)
  out = {f'mAP@{k}': _mean(np.asarray(s[f'ap@{k}']), None) for k in ks}
  out.update({f'P@{m}': _mean(np.asarray(s[f'hits@{m}']) / m, None) for m in pns})
  return out
