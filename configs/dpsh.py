"""DPSH (Li et al., IJCAI 2016): pairwise likelihood on Theta = u_i^T u_j / 2 over in-batch pairs.

  python -m hashjax.main --config configs/dpsh.py:quick --workdir /tmp/dpsh_quick   # digits, 16 bits
  python -m hashjax.main --config configs/dpsh.py --workdir runs/dpsh               # Fashion-MNIST, 48 bits

Arguments: dataset (fashion_mnist | cifar10 | digits | ...), bits, quick.
In-batch pairs instead of DHP's memory bank; quant_weight = 2 eta / (N - 1) = 0.02 (eta 50 on
5,000 training images). :quick does not learn (one code for all images): see hashjax/methods/dpsh.py.
Optimiser: DHP's RMSprop lr 1e-5 (batch 128) fine-tunes an ImageNet backbone; the DSH network here
trains from scratch, so we use Adam lr 1e-3 with a cosine decay (our choice, not tuned on full runs).
quick (digits, 16 bits, 300 steps of 64): mAP 0.10, every image gets the same code (see above).
"""

from hashjax import config_lib


def get_config(arg=None):
  arg = config_lib.parse_arg(arg, dataset='fashion_mnist', bits=48, quick=False)
  c = config_lib.base_config()
  c.method = 'dpsh'
  c.bits = arg.bits
  c.dataset.name = arg.dataset
  c.dataset.protocol = 'full'
  c.loss.quant_weight = 0.02  # 2 eta / (N - 1): the paper's eta on N training images
  c.model.name = 'dsh_net'
  c.model.width = 1.0
  c.augment = 'crop_flip' if arg.dataset.startswith('cifar') else 'crop'
  c.batch_size = 200
  c.num_epochs = 20
  c.optimizer.update(name='adam', lr=1e-3, weight_decay=5e-4, schedule='cosine')
  c.eval.every_steps = 0
  c.eval.topk = (1000,)
  c.checkpoint.every_steps = 1000

  if arg.quick:  # as configs/dsh.py:quick
    c.dataset.name = 'digits' if arg.dataset == 'fashion_mnist' else arg.dataset
    c.bits = arg.bits if arg.bits != 48 else 16
    c.batch_size = 64
    c.num_epochs = 0
    c.num_steps = 300
    c.augment = 'none'
    c.image_size = 16
    c.optimizer.update(name='adam', lr=3e-3, weight_decay=5e-4, schedule='constant')
    c.log_every_steps = 25
    c.checkpoint.every_steps = 200
    c.eval.topk = (100,)
    c.eval.pn = (10, 100)
  return c
