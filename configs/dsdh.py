"""DSDH (Li et al., NIPS 2017): pairwise likelihood + eta ||b - u||^2, B and W by DCC once per epoch.

  python -m hashjax.main --config configs/dsdh.py:quick --workdir /tmp/dsdh_quick   # digits, 16 bits
  python -m hashjax.main --config configs/dsdh.py --workdir runs/dsdh               # Fashion-MNIST, 48 bits, DSH net

Arguments: dataset (fashion_mnist | cifar10 | nus_wide_21 | digits | ...), protocol, bits, quick,
features (an MLP on precomputed feature vectors: `--config.dataset.data_dir=DIR`, common.use_features).
Loss and updates: hashjax/methods/dsdh.py. Parameters: the authors' code (liqi-casia/DSDH-HashingCode):
mu = 1, nu = 0.1 (its ridge lambda = nu/mu), eta = 55; DHP uses mu = nu = 1, eta = 55;
TreezzZ/DSDH_PyTorch mu = 1e-2, nu = 1, eta = 1e-2 (its losses are means over entries, another
scale). eta enters the network loss as eta / (N - 1) per image against the mean over in-batch pairs
(N training images: 60,000 on Fashion-MNIST -> 9e-4; 1,500 digits -> 0.037) and the B-step
unscaled (P = Y W^T + (eta/mu) U). 10 DCC rounds (W-step, one sweep over the bits) per refresh, as
DHP, once per epoch (the paper); B and W are method state, never seen by the optimizer.
Optimiser: the authors fine-tune ImageNet VGG-F (SGD, lr logspace 1e-2 -> 1e-6 over 150 epochs,
weight decay 5e-4, batch 128); on the DSH network from scratch we use the shared supervised
setting (Adam lr 1e-3, cosine decay, 12 epochs; common.supervised_config).
quick (digits, 16 bits, 300 steps of 64, refresh every epoch = 23 steps): mAP 0.10, every image gets
the same code, as DPSH's quick run (the same in-batch likelihood; eta = 1500 collapses too): see
hashjax/methods/dsdh.py.
"""

from hashjax.config import common


def get_config(arg=None):
  c, _ = common.supervised_config('dsdh', arg)
  c.loss.mu = 1.0
  c.loss.nu = 0.1
  c.loss.eta = 55.0
  c.loss.dcc_iters = 10
  c.loss.refresh_epochs = 1.0  # W and B from all training outputs once per epoch
  return c
