"""Precision-recall curve by Hamming-radius sweep (no sort: per-distance counts).

For r = 0..bits, S_r = {j : d(q, j) <= r}:
  precision[r] = mean_q |S_r ∩ Rel_q| / |S_r|   (empty ball: 0, still counted)
  recall[r]    = mean_q |S_r ∩ Rel_q| / R_q     (R_q = 0: 0, or dropped with
                                                 zero_relevant="drop")
as thuml/DeepHash ``get_precision_recall_by_Hamming_Radius_All``.
"""

import numpy as np

from hashjax.retrieval.metrics import check_inputs
from hashjax.retrieval.per_query import per_query_stats


def pr_curve_by_radius(
  query_codes,
  query_labels,
  db_codes,
  db_labels,
  *,
  bits: int,
  zero_relevant: str = 'zero',
  query_chunk: int | None = None,
) -> dict[str, np.ndarray]:
  """Returns {"radius": 0..bits, "precision": (bits+1,), "recall": (bits+1,)}."""
  if zero_relevant not in ('zero', 'drop'):
    raise ValueError(f"zero_relevant must be 'zero' or 'drop', got {zero_relevant!r}")
  qc, ql, dc, dl = check_inputs(query_codes, query_labels, db_codes, db_labels, bits)
  s = per_query_stats(qc, ql, dc, dl, bits=bits, ties='expected', chunk=query_chunk)
  n = np.cumsum(s['hist_all'], axis=1).astype(np.float64)
  r = np.cumsum(s['hist_rel'], axis=1).astype(np.float64)
  total = r[:, -1:]
  prec = np.where(n > 0, r / np.maximum(n, 1), 0.0).mean(axis=0)
  keep = total[:, 0] > 0 if zero_relevant == 'drop' else slice(None)
  rec = (r / np.maximum(total, 1))[keep]
  rec = rec.mean(axis=0) if len(rec) else np.full(bits + 1, np.nan)
  return {'radius': np.arange(bits + 1), 'precision': prec, 'recall': rec}
