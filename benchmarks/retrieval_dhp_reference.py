"""NumPy re-implementation of DeepHash-pytorch's evaluation (utils/tools.py).

``CalcTopMap`` is the per-query loop of swuxyj/DeepHash-pytorch @ab14068:
float32 ±1 codes, float distances 0.5 * (K - B1 @ B2.T), default-kind
``np.argsort`` (quicksort; not stable), AP@topk normalised by the hits in the
top k, zero-hit queries add 0 but still count. Used only as the benchmark
baseline and as a cross-check of ties="numpy".
"""

import numpy as np


def calc_hamming_dist(b1, b2):
  q = b2.shape[1]
  return 0.5 * (q - np.dot(b1, b2.transpose()))


def calc_top_map(r_b, q_b, retrieval_l, query_l, topk):
  num_query = query_l.shape[0]
  topkmap = 0
  for it in range(num_query):
    gnd = (np.dot(query_l[it, :], retrieval_l.transpose()) > 0).astype(np.float32)
    hamm = calc_hamming_dist(q_b[it, :], r_b)
    ind = np.argsort(hamm)
    gnd = gnd[ind]
    tgnd = gnd[0:topk]
    tsum = np.sum(tgnd).astype(int)
    if tsum == 0:
      continue
    count = np.linspace(1, tsum, tsum)
    tindex = np.asarray(np.where(tgnd == 1)) + 1.0
    topkmap_ = np.mean(count / tindex)
    topkmap = topkmap + topkmap_
  return topkmap / num_query
