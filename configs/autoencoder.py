"""Convolutional-autoencoder hashing with an annealed scaled tanh (Chowdhury 2020), unsupervised.

  python -m hashjax.main --config configs/autoencoder.py:quick --workdir /tmp/ae_quick   # digits, ~1 min on CPU
  python -m hashjax.main --config configs/autoencoder.py --workdir runs/ae_mnist          # MNIST, 16 bits (the seed)
  python -m hashjax.main --config configs/autoencoder.py:fashion_mnist --workdir runs/ae_fmnist
  python -m hashjax.main --config configs/autoencoder.py:cifar10,bits=32
  python -m hashjax.retrieve --workdir runs/ae_mnist                                      # top-10 figure

Arguments: a dataset variant (mnist | fashion_mnist | cifar10, or dataset=NAME), bits, quick.
The seed's settings: conv 16/32/64 (3x3, 2x2 max-pooling / up-sampling) and a dense 16-bit
bottleneck for MNIST, VGG-like for RGB; MSE reconstruction; Adam with the learning rate decayed
linearly from 1e-3 to 1e-5; the slope b of tanh(b z) raised until the codes are binary, then
fine-tuning at a lower learning rate. The seed gives neither batch size nor epochs: 128 and 30
here. The slope rises geometrically once an epoch over the first two thirds of the run
(`loss.slope_steps`); the last third is the fine-tuning phase at the final slope, while the
linear decay keeps lowering the learning rate (to 1e-5 at the end). Pixels are normalised per
channel and not augmented; the reconstruction target is the normalised image.
One addition to the seed, `model.code_norm='batch_rms'`: without it the codes stayed continuous
however far the slope rose (the last dense layer shrinks z as fast as b grows); with it they become
binary (benchmarks/notes/autoencoder_vs_shallow.md, the binarisation table).
`--config.model.code_norm=none` gives the seed's network.
Results: BENCHMARKS.md, "Autoencoder vs shallow baselines".
"""

from hashjax.config import common

VARIANTS = ('mnist', 'fashion_mnist', 'cifar10')
TRAIN_SIZES = {'mnist': 60000, 'fashion_mnist': 60000, 'cifar10': 50000}  # the 'full' protocol's train split


def _variant_as_dataset(arg):
  """'fashion_mnist,bits=32' -> 'dataset=fashion_mnist,bits=32': a bare variant name picks the dataset."""
  return ','.join(f'dataset={p}' if p in VARIANTS else p for p in filter(None, (arg or '').split(',')))


def get_config(arg=None):
  arg = common.parse_arg(_variant_as_dataset(arg), dataset='mnist', bits=16, quick=False)
  c = common.base_config()
  c.method = 'autoencoder'
  c.bits = arg.bits
  c.dataset.protocol = 'full'
  c.eval.topk = (1000,)
  common.use_protocol(c, arg.dataset)  # cifar10: its 'full' protocol at mAP@all (common.PAPER_PROTOCOLS)
  c.model.name = 'autoencoder'
  rgb = arg.dataset.startswith('cifar') or arg.dataset == 'stl10'
  # RGB: "mostly follows VGG" (two 3x3 convolutions per block, wider); grey: the seed's 16/32/64.
  c.model.filters = (64, 128, 256) if rgb else (16, 32, 64)
  c.model.convs_per_block = 2 if rgb else 1
  # Not in the seed: the tanh sees z over its per-bit batch RMS, so the encoder cannot undo the
  # rising slope by shrinking z ('none' is the seed's network; see hashjax/models/autoencoder.py).
  c.model.code_norm = 'batch_rms'
  c.augment = 'none'
  c.batch_size = 128
  c.num_epochs = 30
  steps_per_epoch = TRAIN_SIZES.get(arg.dataset, 60000) // c.batch_size
  c.loss.slope_schedule = 'exponential'  # constant | linear | exponential (see hashjax/methods/autoencoder.py)
  c.loss.slope_start = 1.0  # b of tanh(b z); the seed's b' in 2 / (1 + e^{-b'z}) - 1 is 2b
  c.loss.slope_end = 1000.0  # binary codes on Fashion-MNIST; 50 is too low (docstring)
  c.loss.slope_steps = 20 * steps_per_epoch  # annealing ends here; fine-tuning after
  c.loss.slope_update_every = steps_per_epoch  # raise b once an epoch
  c.loss.binary_threshold = 0.99  # |h| above this counts as binary in the binary_fraction metric
  c.optimizer.update(name='adam', lr=1e-3, end_lr=1e-5, schedule='linear', weight_decay=0.0)
  c.eval.every_steps = 0
  c.checkpoint.every_steps = 2000
  c.log_every_steps = 100

  if arg.quick:
    c.dataset.name = 'digits' if arg.dataset == 'mnist' else arg.dataset
    c.batch_size = 64
    c.num_epochs = 0
    c.num_steps = 300
    # 8x8 digits are too small for three 2x2 poolings: upsample to 16x16 on the device.
    c.image_size = 16
    c.model.filters = (8, 16, 32)
    c.model.convs_per_block = 1
    c.loss.slope_steps = 200
    c.loss.slope_update_every = 1
    c.optimizer.update(lr=3e-3, end_lr=1e-5)
    c.log_every_steps = 25
    c.checkpoint.every_steps = 300
    c.eval.topk = (100,)
    c.eval.pn = (10, 100)
  return c
