"""CSQ (Yuan et al., CVPR 2020): fixed Hadamard / random hash centers per class, BCE to the center.

  python -m hashjax.main --config configs/csq.py:quick --workdir /tmp/csq_quick   # digits, 16 bits (Hadamard centers)
  python -m hashjax.main --config configs/csq.py --workdir runs/csq               # Fashion-MNIST, 48 bits
  python -m hashjax.main --config configs/csq.py:bits=64 --config.loss.quant_weight=1e-3

Arguments: dataset (fashion_mnist | cifar10 | nus_wide_21 | digits | ...), protocol, bits, quick,
features (an MLP on precomputed feature vectors: `--config.dataset.data_dir=DIR`, common.use_features).
48 bits is not a power of 2, so its centers are seeded random balanced ones (hashjax/methods/csq.py);
16/32/64 bits use Hadamard rows. lambda (loss.quant_weight) = 1e-4 as DHP (official sweeps 1e-4...0.05).
Optimiser: the official/DHP RMSprop lr 1e-5 fine-tunes an ImageNet backbone; the DSH network here
trains from scratch, so we use Adam lr 1e-3 with a cosine decay, for 30 epochs: chosen on the validation
protocol (after 12 epochs the network underfits its training set, which is the database:
benchmarks/notes/supervised_family.md, "Why the center methods stopped short").
Results (query = 10k test, database = 60k train): BENCHMARKS.md, "Supervised family".
quick (digits, 16 bits, Hadamard centers, 300 steps of 64): mAP 0.98 in ~45 s on a shared 2-core CPU
(LSH on the pixels: ~0.32 at 16 bits).
"""

from hashjax.config import common


def get_config(arg=None):
  c, arg = common.supervised_config('csq', arg)
  c.loss.quant_weight = 1e-4  # lambda
  c.loss.center_seed = 0  # random centers (bits not a power of 2) and multi-label tie bits
  if not (arg.quick or arg.features):
    c.num_epochs = 30  # chosen on the validation protocol (see the docstring)
  return c
