"""HashNet (Cao et al., ICCV 2017): tanh(beta z) continuation + class-balanced pairwise likelihood.

  python -m hashjax.main --config configs/hashnet.py:quick --workdir /tmp/hashnet_quick   # digits, 16 bits
  python -m hashjax.main --config configs/hashnet.py --workdir runs/hashnet               # Fashion-MNIST, 48 bits

Arguments: dataset (fashion_mnist | cifar10 | nus_wide_21 | digits | ...), protocol, bits, quick,
features (an MLP on precomputed feature vectors: `--config.dataset.data_dir=DIR`, common.use_features).
alpha (loss.sigmoid_param) = 10 / bits, beta = (1 + 0.005 n)^0.5 raised every 200 steps (official).
Optimiser: the official SGD Nesterov lr 3e-4 (x0.5 every 2k iterations, hash layer x10, 10k
iterations, two batches of 36) fine-tunes an ImageNet AlexNet; the DSH network here trains from
scratch, so we use Adam lr 1e-3 with a cosine decay and batch 200 (our choice, not tuned on full runs).
quick (digits, 16 bits, 300 steps of 64, Adam 1e-3): mAP 0.68 in ~35 s on a shared 2-core CPU
(LSH on the pixels: ~0.32 at 16 bits).
"""

from hashjax.config import common


def get_config(arg=None):
  c, arg = common.supervised_config('hashnet', arg)
  c.loss.sigmoid_param = None  # alpha; None: 10 / bits
  c.loss.beta_gamma = 0.005
  c.loss.beta_power = 0.5
  c.loss.beta_every = 200  # steps between beta updates
  if arg.quick:  # Adam lr 1e-3, not 3e-3: at 3e-3 this loss reached only mAP 0.30 on digits (1e-3: 0.68)
    c.optimizer.lr = 1e-3
  return c
