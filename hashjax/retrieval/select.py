"""k smallest small-integer distances per row, by counting instead of sorting.

Distances live in [0, nbuckets): a histogram gives the threshold distance t
(the bucket holding the k-th smallest) and how many items of bucket t are
needed; one prefix count then marks exactly k items. Tie order is stable: at
equal distance the lower position wins, so the result equals the first k of a
stable sort by distance.
"""

import jax.numpy as jnp
from jax import lax


def select_k_smallest(d, payload, k: int, nbuckets: int):
  """(cq, T) int32 distances -> (dist, payload) (cq, k), in position order.

  Requires k <= T. The k selected items come out in their original order
  (not sorted by distance); ``merge_sorted`` sorts them.
  """
  cq, n = d.shape
  if k > n:
    raise ValueError(f"k={k} > row length {n}")
  rows = lax.broadcasted_iota(jnp.int32, d.shape, 0)
  hist = jnp.zeros((cq, nbuckets), jnp.int32).at[rows, d].add(1)
  cum = jnp.cumsum(hist, axis=1)
  t = jnp.sum(cum < k, axis=1, dtype=jnp.int32)  # bucket of the k-th item
  before = jnp.take_along_axis(cum - hist, t[:, None], axis=1)  # items < t
  need = k - before
  lt = d < t[:, None]
  eq = d == t[:, None]
  if n < 2**15:
    # One prefix sum for both counts: low 16 bits #(d < t), high #(d == t).
    c = jnp.cumsum(lt.astype(jnp.int32) + (eq.astype(jnp.int32) << 16), axis=1)
    lt_rank, eq_rank = c & 0xFFFF, c >> 16
  else:
    lt_rank = jnp.cumsum(lt.astype(jnp.int32), axis=1)
    eq_rank = jnp.cumsum(eq.astype(jnp.int32), axis=1)  # 1-based in bucket t
  sel = lt | (eq & (eq_rank <= need))
  # Slot = selected items before j: all (d < t) ones plus ties, capped by need.
  pos = jnp.where(sel, lt_rank + jnp.minimum(eq_rank, need) - 1, k)
  out_d = jnp.zeros((cq, k), d.dtype).at[rows, pos].set(d, mode="drop")
  out_p = jnp.zeros((cq, k), payload.dtype).at[rows, pos].set(payload,
                                                              mode="drop")
  return out_d, out_p


def merge_sorted(d, idx, k: int):
  """First k of (d, idx) sorted by distance then index, along axis 1."""
  d, idx = lax.sort((d, idx), dimension=1, num_keys=2)
  return d[:, :k], idx[:, :k]
