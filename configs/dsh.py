"""DSH (Liu et al., CVPR 2016): in-batch pairs, margin 2*bits, alpha 0.01, codes sign(u).

  python -m hashjax.main --config configs/dsh.py:quick                  # digits, ~1 minute on CPU
  python -m hashjax.main --config configs/dsh.py --workdir runs/dsh     # Fashion-MNIST, 48 bits
  python -m hashjax.main --config configs/dsh.py:dataset=cifar10,bits=12 --config.optimizer.lr=1e-3
  python -m hashjax.main --config configs/dsh.py:dataset=nus_wide_21 --config.dataset.data_dir=NUS-WIDE/   # mAP@5000

  python -m hashjax.main --config configs/dsh.py:pairs=fixed,bits=12      # seed 004: 200k fixed random pairs

Arguments: dataset (fashion_mnist | cifar10 | nus_wide_21 | digits | ...), protocol, bits, quick, pairs (batch | fixed),
features (an MLP on precomputed feature vectors: `--config.dataset.data_dir=DIR`, common.use_features).
pairs=fixed (hashjax/methods/dsh.py): a fixed set of loss.num_pairs = 200,000 seeded random pairs of
training images (seed 004's siamese DSH study: 200k pairs, batch 200, 30 epochs, m = 24 at 12 bits,
alpha 0.01) instead of every in-batch pair; a batch of B images carries B * num_pairs / N pairs, so
batch_size = 60 gives 200 pairs a step on Fashion-MNIST's 60,000 training images (1,000 steps an
epoch, each epoch visits every pair once). quick: 6,000 pairs of the 1,500 digits, 64 images (256
pairs) a step. `--config.loss.pairs=fixed` alone keeps batch_size.
Default protocol: test queries vs train database ('full'); a dataset of the papers gets its
protocol and mAP cut-off (`dataset=nus_wide_21`: DeepHash-pytorch's lists at mAP@5000,
common.PAPER_PROTOCOLS); DSH's own CIFAR-10 protocol is `protocol=cifar10_dsh` (test_vs_test),
DeepHash-pytorch's `protocol=cifar10_1`. Results: BENCHMARKS.md, "DSH on Fashion-MNIST" (12 epochs)
and "Supervised family" (30 epochs).
"""

from hashjax.config import common


def get_config(arg=None):
  c, arg = common.supervised_config('dsh', arg, pairs='batch')
  c.loss.margin = None  # None: 2 * bits, as the paper
  c.loss.alpha = 0.01
  c.loss.pairs = arg.pairs  # 'batch': every in-batch pair; 'fixed': a fixed random pair set
  c.loss.num_pairs = 200000  # pairs=fixed: size of the pair set
  c.loss.pair_seed = 0  # pairs=fixed: which pairs
  if arg.pairs == 'fixed':
    c.batch_size = 64 if arg.quick else 60
    c.loss.num_pairs = 6000 if arg.quick else 200000
  # Adam + cosine (common.supervised_config): the paper's SGD (lr 1e-3, momentum 0.9, weight
  # decay 0.004, 70k iterations) was far from converged after 20 epochs here
  # (benchmarks/notes/dsh_fashion_mnist.md); it stays available as
  # --config.optimizer.name=sgd --config.optimizer.weight_decay=0.004.
  return c
