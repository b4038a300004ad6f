"""DPSH (Li et al., IJCAI 2016): pairwise likelihood on Theta = u_i^T u_j / 2 over in-batch pairs.

  python -m hashjax.main --config configs/dpsh.py:quick --workdir /tmp/dpsh_quick   # digits, 16 bits
  python -m hashjax.main --config configs/dpsh.py --workdir runs/dpsh               # Fashion-MNIST, 48 bits

Arguments: dataset (fashion_mnist | cifar10 | nus_wide_21 | digits | ...), protocol, bits, quick,
features (an MLP on precomputed feature vectors: `--config.dataset.data_dir=DIR`, common.use_features).
In-batch pairs instead of DHP's memory bank; quant_weight = 2 eta / (N - 1) = 0.02 (eta 50 on
5,000 training images). :quick does not learn (one code for all images): see hashjax/methods/dpsh.py.
Optimiser: DHP's RMSprop lr 1e-5 (batch 128) fine-tunes an ImageNet backbone; the DSH network here
trains from scratch, so we use Adam lr 1e-3 with a cosine decay (our choice, not tuned on full runs).
quick (digits, 16 bits, 300 steps of 64): mAP 0.10, every image gets the same code (see above).
"""

from hashjax.config import common


def get_config(arg=None):
  c, _ = common.supervised_config('dpsh', arg)
  c.loss.quant_weight = 0.02  # 2 eta / (N - 1): the paper's eta on N training images
  return c
