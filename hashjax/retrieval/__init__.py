"""Retrieval engine: bit-packed codes, Hamming distances in XLA, retrieval metrics.

Modules: codes (packing, .npz code DB), hamming (XOR + popcount), metrics
(mAP, mAP@K, P@H<=r, R@H<=r, P@N), per_query (XLA kernels), native (the C++
stable-tie kernel, an XLA custom call compiled on first use), db_sharded (the
same over a database split across devices), expected (tie-free counts),
pr_curve (radius sweep), select + search (exact top-k, sharded), hash_table
(radius lookup), coarse_to_fine (Hamming candidates re-ranked by feature
distance, DLBHC).
"""

from hashjax.retrieval.codes import CodeDB
from hashjax.retrieval.codes import load_code_db
from hashjax.retrieval.codes import pack_codes
from hashjax.retrieval.codes import pack_codes_jnp
from hashjax.retrieval.codes import save_code_db
from hashjax.retrieval.codes import unpack_codes
from hashjax.retrieval.hamming import hamming_distances
from hashjax.retrieval.hash_table import HashTable
from hashjax.retrieval.metrics import mean_average_precision
from hashjax.retrieval.metrics import ranked_list_metrics
from hashjax.retrieval.metrics import retrieval_metrics
from hashjax.retrieval.pr_curve import pr_curve_by_radius
from hashjax.retrieval.search import db_mesh
from hashjax.retrieval.search import topk_search
