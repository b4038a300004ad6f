"""The config schema every method shares and the building blocks of `configs/<method>.py`.

Config files import this module (and ml_collections) only: `base_config()` states every shared
default once; `supervised_config`, `shallow_config` and `class_center_paper_setting` are the common
starting points; `parse_arg` reads the `configs/<method>.py:arg` string. With `lock_config=True` in
`main.py`, an override of a key that is not in the schema fails at once.
"""

from __future__ import annotations

import ml_collections as mlc


def parse_arg(arg: str | None, **defaults):
  """big_vision's idiom: 'bits=48,dataset=cifar10,quick' -> ConfigDict with typed defaults.

  A bare name sets a boolean flag; a key that is not among `defaults` fails listing the valid ones.
  """
  out = mlc.ConfigDict(defaults)
  for part in filter(None, (arg or '').split(',')):
    key, _, value = part.partition('=')
    if key not in defaults:
      raise ValueError(f'unknown config argument {key!r}; valid: {", ".join(sorted(defaults))}')
    if not _:
      out[key] = True
      continue
    kind = type(defaults[key])
    out[key] = (
      value.lower() in ('1', 'true', 'yes') if kind is bool else kind(value) if defaults[key] is not None else value
    )
  return out


DATASET_READS = ('auto', 'memory', 'per_process')


def base_config() -> mlc.ConfigDict:
  c = mlc.ConfigDict()
  c.method = 'dsh'
  c.bits = 48
  c.seed = 0
  # reads: 'memory' (every process holds whole splits), 'per_process' (tfds records decoded when
  # indexed: each process reads its share of every batch) or 'auto' (per_process with several
  # processes); hashjax/data/lazy_images.py.
  # data_dir: the dataset's files (an archive, its extracted folder, an image root; README ## Data).
  # Per-format options, '' / 0 = unset (a dataset fails on options it does not read, sources.load):
  # list_dir: where DeepHash-pytorch's train/test/database.txt lists are (unset: data_dir);
  # decode_size: image lists and folders are decoded and resized to this square size (unset: 256,
  # DeepHash-pytorch's Resize(256); the network's image_size / augment crop come after, on device);
  # label_type: cifar100 'fine' (100 classes, unset) or 'coarse' (20 superclasses).
  # Images decoded from disk (lists, folders, tfds per process) stream (hashjax/data/streaming.py):
  # workers: decoding processes (-1: one per core available; 0: in the training process);
  # prefetch: global batches put on the devices ahead of the step; skip_unreadable: replace an
  # image that cannot be decoded by its batch's previous one and count it, instead of stopping.
  c.dataset = mlc.ConfigDict(
    dict(
      name='digits',
      protocol='full',
      split_seed=0,
      data_dir='',
      reads='auto',
      protocol_args=mlc.ConfigDict(),
      list_dir='',
      decode_size=0,
      label_type='',
      workers=-1,
      prefetch=2,
      skip_unreadable=False,
    )
  )
  c.image_size = 0  # 0: native size; else resize (on device) to image_size x image_size
  c.augment = 'none'
  c.normalize = 'dataset'  # per-channel mean/std of the training images, or 'imagenet' (pretrained backbones)
  c.model = mlc.ConfigDict(dict(name='dsh_net', dtype='float32', pretrained=''))  # pretrained: hashjax.weights dir
  c.loss = mlc.ConfigDict()  # the method's own hyperparameters
  c.batch_size = 200
  c.num_epochs = 10
  c.num_steps = 0  # > 0 overrides num_epochs
  c.optimizer = mlc.ConfigDict(
    dict(
      name='sgd',
      lr=1e-3,
      momentum=0.9,
      weight_decay=0.0,
      schedule='constant',
      warmup_steps=0,
      decay_epochs=(),
      decay_factor=0.1,
      end_lr=0.0,
      grad_clip_norm=0.0,
      nesterov=False,
      lr_multipliers='',
    )
  )  # e.g. 'model/head/=10,method/=0.5' (optim.py)
  c.eval = mlc.ConfigDict(dict(every_steps=0, batch_size=1000, topk=(1000,), radius=2, pn=(100, 1000), ties='stable'))
  # restore_step: 0 resumes from the latest checkpoint, N > 0 from step N on purpose (later steps are
  # moved to checkpoints_set_aside/). allow_changes: 'optimizer.lr,loss.' lets a resume change these
  # keys (or groups) besides the RESUMABLE_KEYS, e.g. a lower lr after a NaN stop.
  c.checkpoint = mlc.ConfigDict(dict(every_steps=1000, keep=3, restore_step=0, allow_changes=''))
  c.log_every_steps = 50
  c.init_from = ''  # another run's workdir: start from its parameters
  c.num_devices = 0  # 0: every device of every process
  return c


def supervised_config(method: str, arg: str | None, **extra_args) -> tuple[mlc.ConfigDict, mlc.ConfigDict]:
  """(config, parsed arg) of a supervised method on the DSH network (configs/dsh.py, csq.py, ...).

  Fashion-MNIST, 48 bits, batch 200, 12 epochs of Adam lr 1e-3 with a cosine decay, crops and
  mirrors for CIFAR only: the DSH setting that measured best here (BENCHMARKS.md, "DSH on
  Fashion-MNIST"). `quick`: the embedded digits upsampled to 16x16, 16 bits, 300 steps of 64.
  Arguments: dataset, bits, quick, and the config file's own `extra_args` (name=default).
  """
  arg = parse_arg(arg, dataset='fashion_mnist', bits=48, quick=False, **extra_args)
  c = base_config()
  c.method = method
  c.bits = arg.bits
  c.dataset.name = arg.dataset
  c.dataset.protocol = 'full'
  c.model.name = 'dsh_net'
  c.model.width = 1.0  # channel multiplier (1.0 = the paper's 32/32/64, fc 500)
  # Mirror + crop for CIFAR as the DSH paper; none for the centred 28x28 MNIST-style images
  # (random crops cost Fashion-MNIST 0.05 mAP@all at 8 epochs of DSH:
  # benchmarks/notes/dsh_fashion_mnist.md).
  c.augment = 'crop_flip' if arg.dataset.startswith('cifar') else 'none'
  c.batch_size = 200
  c.num_epochs = 12
  c.optimizer.update(name='adam', lr=1e-3, momentum=0.9, weight_decay=0.0, schedule='cosine')
  c.eval.every_steps = 0
  c.eval.topk = (1000,)
  c.checkpoint.every_steps = 1000
  if arg.quick:
    c.dataset.name = 'digits' if arg.dataset == 'fashion_mnist' else arg.dataset
    c.bits = arg.bits if arg.bits != 48 else 16
    c.batch_size = 64
    c.num_epochs = 0
    c.num_steps = 300
    c.augment = 'none'
    # 8x8 digits are too small for three stride-2 poolings: upsample to 16x16 on the device.
    c.image_size = 16
    c.optimizer.update(name='adam', lr=3e-3, weight_decay=5e-4, schedule='constant')
    c.log_every_steps = 25
    c.checkpoint.every_steps = 200
    c.eval.topk = (100,)
    c.eval.pn = (10, 100)
  return c, arg


def class_center_paper_setting(c: mlc.ConfigDict) -> None:
  """The DCWH / IDCWH papers' CIFAR-10 'full' setting on an ImageNet GoogLeNet (configs/dcwh.py, idcwh.py):
  224 px, batch 128, 150 epochs, SGD lr 1e-3 x0.1 every 50 epochs, momentum 0.9, weight decay 5e-4."""
  c.dataset.name = 'cifar10'
  c.dataset.protocol = 'full'
  c.model.name = 'googlenet'
  c.image_size = 224
  c.normalize = 'imagenet'
  c.augment = 'resize_crop_flip'  # resize up, random crop back + mirror (the code: Resize(240) -> RandomCrop(224))
  c.batch_size = 128
  c.num_epochs = 150
  c.optimizer.update(
    name='sgd', lr=1e-3, momentum=0.9, weight_decay=5e-4, schedule='step', decay_epochs=(50, 100), decay_factor=0.1
  )


def shallow_config(method: str, arg: str | None, **defaults) -> mlc.ConfigDict:
  """The config of a shallow baseline (configs/lsh.py, itq.py, ...): fit on pixels, no training.

  Arguments: dataset, bits, quick (the embedded digits).
  """
  arg = parse_arg(arg, **{'dataset': 'fashion_mnist', 'bits': 32, 'quick': False, **defaults})
  c = base_config()
  c.method = method
  c.bits = 16 if arg.quick and arg.bits == 32 else arg.bits  # quick: DSH quick's length
  c.dataset.name = 'digits' if arg.quick else arg.dataset
  c.dataset.protocol = 'full'
  c.loss.features = 'pixels'  # or a .npy of features, one row per pool image (protocol order)
  c.eval.topk = (100,) if arg.quick else (1000,)
  c.eval.pn = (10, 100) if arg.quick else (100, 1000)
  return c
