"""DCWH (Zhe, Chen, Yan, TNNLS 2020): class centers recomputed every 2 epochs, normalised-Gaussian loss.

  python -m hashjax.main --config configs/dcwh.py:quick --workdir /tmp/dcwh_quick   # digits, 16 bits
  python -m hashjax.main --config configs/dcwh.py --workdir runs/dcwh               # Fashion-MNIST, 48 bits, DSH net
  python -m hashjax.main --config configs/dcwh.py:paper --config.model.pretrained=weights/googlenet
  python -m hashjax.main --config configs/dcwh.py:learnable                         # the code's -u flag

Arguments: dataset, protocol, bits, quick, features (as configs/dsh.py), learnable (centers trained
by SGD instead of recomputed), paper (the paper's CIFAR-10 setting: GoogLeNet at 224 px, SGD lr 1e-3 x0.1 every 50 epochs, momentum
0.9, weight decay 5e-4, batch 128, 150 epochs; CIFAR-10 full, or `paper,dataset=cifar100`,
`paper,protocol=cifar10_mini`: common.PAPER_PROTOCOLS). paper needs converted ImageNet weights
(model.pretrained; without them it stops at validation naming `python -m hashjax.weights convert`;
--config.model.pretrained=none trains from random initialisation on purpose).
Loss as the public code (hashjax/methods/dcwh.py): sigma = 1 (the code's effective value), cubic
weight 10, vertex weight 0.01. Default (Fashion-MNIST on the DSH network from scratch): the shared
supervised setting, Adam lr 1e-3 with a cosine decay for 12 epochs, centers recomputed every 2.
quick (digits, 16 bits, 300 steps of 64, centers recomputed every epoch): mAP 0.50 in ~45 s; 300
steps are too few for recomputed centers (CSQ's fixed centers reach 0.98). On Fashion-MNIST the
recomputed centers leave undecided bits that settle slowly, the more slowly the more bits, so
longer training helps (`--config.num_epochs=60`). With learnable centers the codes sit farther
from their centers at sigma 1 and on them at IDCWH's sigma 4 (`--config.loss.inv_var=0.0625`).
Results: BENCHMARKS.md, "Supervised family"; the ablations: benchmarks/notes/supervised_family.md,
"Learnable vs recomputed centers in DCWH" and "sigma and the optimizer, isolated".
"""

from hashjax.config import common


def get_config(arg=None):
  c, arg = common.supervised_config('dcwh', arg, learnable=False, paper=False)
  c.loss.inv_var = 1.0  # sigma: the public code's effective value (its --inv_var never reaches the loss)
  c.loss.cubic_weight = 10.0
  c.loss.vertex_weight = 0.01
  c.loss.cubic_precedence_quirk = False  # True: divide only the positive cubic side by B, as the code
  c.loss.learnable_centers = arg.learnable
  # Recomputed centers are method state (never seen by the optimizer), refreshed every 2 epochs.
  c.loss.refresh_epochs = 0.0 if arg.learnable else 2.0  # float: fractions of an epoch allowed
  if arg.quick:
    c.loss.refresh_epochs = 0.0 if arg.learnable else 1.0
  if arg.paper:
    if arg.features:
      raise ValueError('paper is the GoogLeNet image setting; features trains an MLP on feature vectors: pick one')
    common.class_center_paper_setting(c, arg.dataset, arg.protocol)
  return c
