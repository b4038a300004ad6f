"""GreedyHash (Su et al., NeurIPS 2018): sign forward / identity backward, CE of a classifier on the codes.

  python -m hashjax.main --config configs/greedyhash.py:quick --workdir /tmp/gh_quick   # digits, 16 bits
  python -m hashjax.main --config configs/greedyhash.py --workdir runs/greedyhash       # Fashion-MNIST, 48 bits, DSH net

Arguments: dataset (fashion_mnist | cifar10 | nus_wide_21 | digits | ...), protocol, bits, quick,
features (an MLP on precomputed feature vectors: `--config.dataset.data_dir=DIR`, common.use_features).
Loss (hashjax/methods/greedyhash.py): CE(W sign(h), y) + 0.1 mean | |h| - 1 |^3, the classifier W
(bits -> classes) in params['method'], trained with the network at the same learning rate.
The paper's defaults (official `cifar1.py`, ImageNet VGG16/AlexNet fine-tuned): SGD lr 1e-3
(x0.1 every 30 epochs), momentum 0.9, weight decay 5e-4, batch 32, 50 epochs. On Fashion-MNIST with
the DSH network from scratch we use the shared supervised setting instead (Adam lr 1e-3 with a
cosine decay, batch 200, 12 epochs; common.supervised_config), as the other methods here.
quick (digits, 16 bits, 300 steps of 64): mAP 0.983 in ~70 s on a shared 2-core CPU (CSQ quick: 0.98).
"""

from hashjax.config import common


def get_config(arg=None):
  c, _ = common.supervised_config('greedyhash', arg)
  c.loss.quant_weight = 0.1  # alpha of the cubic | |h| - 1 |^3 term
  return c
