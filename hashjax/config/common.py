"""The config schema every method shares and the building blocks of `configs/<method>.py`.

Config files import this module (and ml_collections) only: `base_config()` states every shared
default once; `supervised_config`, `shallow_config` and `class_center_paper_setting` are the common
starting points; `parse_arg` reads the `configs/<method>.py:arg` string; `PAPER_PROTOCOLS` and
`use_protocol` are the papers' evaluation settings that the configs' `dataset=` / `protocol=`
arguments pick. With `lock_config=True` in `main.py`, an override of a key that is not in the
schema fails at once.
"""

from __future__ import annotations

import dataclasses

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


@dataclasses.dataclass(frozen=True)
class PaperProtocol:
  """A published evaluation setting: the data, its query / train / database split, the mAP cut-off."""

  dataset: str  # config.dataset.name
  protocol: str  # config.dataset.protocol (hashjax/data/protocols.py)
  topk: tuple[int, ...]  # config.eval.topk; (): the papers report mAP@all, which every run reports as 'mAP'
  sizes: str  # query / train / database, as published
  used_by: str  # who reports numbers in it (reference/evaluation.md section 3)


# The papers' settings by name (`configs/<method>.py:protocol=NAME`). Sources: reference/evaluation.md
# section 3, DeepHash-pytorch's utils/tools.py (config_dataset's topK, cifar_dataset's splits) and the
# line counts of its data/<name>/*.txt lists at ab14068. DeepHash-pytorch's and CIMON's "mAP@all"
# (topK = -1) leave out the last database item; hashjax's mAP@all ranks every item.
PAPER_PROTOCOLS: dict[str, PaperProtocol] = {
  'cifar10_mini': PaperProtocol(
    'cifar10',
    'cifar10_mini',
    (),
    '1,000 (100/class) / 5,000 (500/class) / 54,000 (the rest, train excluded)',
    "DPSH, DeepHash-pytorch 'cifar10', the IDCWH slides' CIFAR-10 mini (DCWH, IDCWH)",
  ),
  'cifar10_1': PaperProtocol(
    'cifar10',
    'cifar10_1',
    (),
    '1,000 (100/class) / 5,000 (500/class) / 59,000 (every non-query image, train included)',
    "DeepHash-pytorch 'cifar10-1' (its default: DSH, DSDH, DFH, GreedyHash, ADSH rows of its README)",
  ),
  'cifar10_2': PaperProtocol(
    'cifar10',
    'cifar10_2',
    (),
    '10,000 (1,000/class of all 60,000) / 50,000 (5,000/class) / 50,000 = train',
    "DeepHash-pytorch 'cifar10-2' (GreedyHash)",
  ),
  'cifar10_full': PaperProtocol(
    'cifar10',
    'full',
    (),
    '10,000 (the test split) / 50,000 (the train split) / 50,000 = train',
    "DCWH, the IDCWH slides' CIFAR-10 full",
  ),
  'cifar10_cimon': PaperProtocol(
    'cifar10',
    'cimon',
    (),
    '10,000 (1,000/class) / 5,000 (500/class) / 50,000 (every non-query image, train included)',
    'CIMON, DistillHash',
  ),
  'cifar10_dsh': PaperProtocol(
    'cifar10',
    'test_vs_test',
    (),
    '10,000 (the test split) / 50,000 (the train split) / 10,000 = query (self-matches included)',
    'DSH (its own CIFAR-10 protocol)',
  ),
  'cifar100_full': PaperProtocol(
    'cifar100',
    'full',
    (),
    '10,000 (the test split) / 50,000 (the train split) / 50,000 = train',
    'DCWH, IDCWH',
  ),
  'nus_wide_21': PaperProtocol(
    'nus_wide_21',
    'full',
    (5000,),
    "2,100 / 10,500 / 193,734 (DeepHash-pytorch's lists; train drawn from the database)",
    'DeepHash-pytorch (DSH, DPSH, HashNet, DSDH, DTSH, ... on NUS-WIDE-21)',
  ),
  'coco': PaperProtocol(
    'coco',
    'full',
    (5000,),
    "5,000 / 10,000 / the rest (HashNet's lists, as DeepHash-pytorch ships them)",
    'HashNet, DeepHash-pytorch, CSQ, IDCWH',
  ),
  'imagenet100': PaperProtocol(
    'imagenet100',
    'full',
    (1000,),
    "5,000 / 13,000 / the 100 classes' training images (HashNet's lists)",
    'HashNet, DeepHash-pytorch, CSQ',
  ),
  'mirflickr25k': PaperProtocol(
    'mirflickr25k', 'full', (), "1,000 / 4,000 / 20,000 (DeepHash-pytorch's lists)", 'DeepHash-pytorch'
  ),
  'voc2012': PaperProtocol(
    'voc2012', 'full', (), "1,000 / 4,000 / 6,540 (DeepHash-pytorch's lists)", 'DeepHash-pytorch'
  ),
}
# What `dataset=NAME` alone picks; datasets not named here (digits, MNIST, Fashion-MNIST, STL-10,
# image_list, image_folder) keep the config's own protocol and eval.topk.
DATASET_PROTOCOLS = {
  'cifar10': 'cifar10_full',
  'cifar100': 'cifar100_full',
  'nus_wide_21': 'nus_wide_21',
  'coco': 'coco',
  'imagenet100': 'imagenet100',
  'mirflickr25k': 'mirflickr25k',
  'voc2012': 'voc2012',
}


def protocol_dataset(protocol: str) -> str:
  """The dataset of the PAPER_PROTOCOLS setting `protocol` ('' for ''); an unknown name fails listing the valid ones."""
  if protocol and protocol not in PAPER_PROTOCOLS:
    raise ValueError(f'unknown protocol={protocol!r}; valid names: {", ".join(PAPER_PROTOCOLS)}')
  return PAPER_PROTOCOLS[protocol].dataset if protocol else ''


def use_protocol(c: mlc.ConfigDict, dataset: str, protocol: str = '') -> None:
  """Sets `c.dataset.name`, and for a paper's setting its `dataset.protocol` and `eval.topk`.

  Args:
    c: the config, changed in place (`dataset.protocol_args` is left as it is).
    dataset: the config's `dataset=` argument ('' when only `protocol` names it).
    protocol: a key of PAPER_PROTOCOLS, or '': the dataset's usual setting (DATASET_PROTOCOLS),
      if it has one; else only the dataset's name is set.

  Raises:
    ValueError: an unknown protocol name (listing the valid ones), or one of another dataset.
  """
  if protocol:
    protocol_dataset(protocol)  # an unknown name fails here, listing the valid ones
    setting = PAPER_PROTOCOLS[protocol]
    if dataset and dataset != setting.dataset:
      valid = [name for name, p in PAPER_PROTOCOLS.items() if p.dataset == dataset]
      raise ValueError(
        f'protocol={protocol} is a {setting.dataset} protocol, not one of {dataset}'
        + (f' ({", ".join(valid)})' if valid else f" ({dataset} has none of the papers' protocols)")
      )
  elif dataset in DATASET_PROTOCOLS:
    setting = PAPER_PROTOCOLS[DATASET_PROTOCOLS[dataset]]
  else:
    c.dataset.name = dataset
    return
  c.dataset.name = setting.dataset
  c.dataset.protocol = setting.protocol
  c.eval.topk = setting.topk


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
  # cache_dir: image lists and folders keep each decoded image there, decoding it once (a local
  # disk; hashjax/data/formats/image_files.py DecodeCache);
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
      cache_dir='',
      label_type='',
      workers=-1,
      prefetch=2,
      skip_unreadable=False,
    )
  )
  c.image_size = 0  # 0: native size; else resize (on device) to image_size x image_size
  c.augment = 'none'  # images: hashjax/data/augment.py; feature vectors: 'none' or 'feature_views'
  # Images: per-channel mean/std of the training images, or 'imagenet' (pretrained backbones).
  # Feature vectors (dataset.name=features): 'dataset' = per-dimension standardisation, or 'none'.
  c.normalize = 'dataset'
  # augment='feature_views' on feature vectors (hashjax/data/feature_views.py), each 0 = off: mix
  # towards another row of the batch by lam ~ U(0, mix), drop dimensions with probability dropout,
  # add noise * N(0, 1).
  c.feature_views = mlc.ConfigDict(dict(mix=0.0, dropout=0.0, noise=0.0))
  # pretrained: a directory of `python -m hashjax.weights convert` (ImageNet backbone weights), or
  # 'none': random initialisation on purpose. requires_pretrained: the setting is meant to start
  # from such weights (the papers' runs), so an empty `pretrained` stops the run at validation.
  c.model = mlc.ConfigDict(dict(name='dsh_net', dtype='float32', pretrained='', requires_pretrained=False))
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


def use_features(c: mlc.ConfigDict, head_activation: str = 'none') -> None:
  """Makes `c` train an MLP hash head on precomputed feature vectors (the configs' `:features`
  variants; README, "Foundation-model features"): dataset `features` (its files come from
  `--config.dataset.data_dir=DIR`; the protocol and mAP cut-off stay the config's), the `mlp` model
  (hashjax/models/mlp.py: one hidden layer of 1024 ReLU units with LayerNorm and dropout 0.1),
  per-dimension standardisation, no image resizing or augmentation, batch 256, 20 epochs of
  Adam 1e-3 with a cosine decay (an epoch of an MLP costs far less than one of a CNN). `c.model` is
  replaced whole (the image models' keys do not apply); `head_activation`: 'tanh' for CIMON.
  """
  c.dataset.name = 'features'
  c.model = mlc.ConfigDict(
    dict(
      name='mlp',
      dtype='float32',
      pretrained='',
      requires_pretrained=False,
      hidden=(1024,),  # hidden widths; (): a linear hash layer on the features
      activation='relu',  # relu | gelu | silu | tanh
      dropout=0.1,
      norm='layer',  # none | layer | rms
      head_activation=head_activation,  # none | tanh | sigmoid
    )
  )
  c.image_size = 0
  c.normalize = 'dataset'  # per-dimension standardisation with the training rows' mean and std
  c.augment = 'none'
  c.batch_size = 256
  c.num_epochs = 20
  c.num_steps = 0
  c.optimizer.update(name='adam', lr=1e-3, momentum=0.9, weight_decay=0.0, schedule='cosine')


def supervised_config(method: str, arg: str | None, **extra_args) -> tuple[mlc.ConfigDict, mlc.ConfigDict]:
  """(config, parsed arg) of a supervised method on the DSH network (configs/dsh.py, csq.py, ...).

  Fashion-MNIST, 48 bits, batch 200, 12 epochs of Adam lr 1e-3 with a cosine decay, crops and
  mirrors for CIFAR only: the DSH setting that measured best here (BENCHMARKS.md, "DSH on
  Fashion-MNIST"). `quick`: the embedded digits upsampled to 16x16, 16 bits, 300 steps of 64.
  Arguments: dataset, protocol (a PAPER_PROTOCOLS name; a dataset of the papers alone picks its
  usual one, with the mAP cut-off it is reported at: `use_protocol`), bits, quick, features (an
  MLP on precomputed feature vectors, `use_features`; with dataset= or protocol=, that dataset's
  protocol and mAP cut-off applied to features extracted from it; with quick, 300 steps of 64), and
  the config file's own `extra_args` (name=default).
  """
  arg = parse_arg(arg, dataset='', bits=48, quick=False, protocol='', features=False, **extra_args)
  c = base_config()
  c.method = method
  c.bits = arg.bits
  c.dataset.protocol = 'full'
  c.eval.topk = (1000,)
  # Unset, the dataset is Fashion-MNIST, or the one `protocol` names.
  use_protocol(c, arg.dataset or protocol_dataset(arg.protocol) or 'fashion_mnist', arg.protocol)
  dataset = c.dataset.name
  c.model.name = 'dsh_net'
  c.model.width = 1.0  # channel multiplier (1.0 = the paper's 32/32/64, fc 500)
  # Mirror + crop for CIFAR as the DSH paper; none for the centred 28x28 MNIST-style images
  # (random crops cost Fashion-MNIST 0.05 mAP@all at 8 epochs of DSH:
  # benchmarks/notes/dsh_fashion_mnist.md).
  c.augment = 'crop_flip' if dataset.startswith('cifar') else 'none'
  c.batch_size = 200
  c.num_epochs = 12
  c.optimizer.update(name='adam', lr=1e-3, momentum=0.9, weight_decay=0.0, schedule='cosine')
  c.eval.every_steps = 0
  c.checkpoint.every_steps = 1000
  if arg.quick:
    c.dataset.name = 'digits' if dataset == 'fashion_mnist' else dataset
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
  if arg.features:
    use_features(c)
    if arg.quick:
      c.batch_size, c.num_epochs, c.num_steps = 64, 0, 300
  return c, arg


def class_center_paper_setting(c: mlc.ConfigDict, dataset: str = '', protocol: str = '') -> None:
  """The DCWH / IDCWH papers' CIFAR-10 'full' setting on an ImageNet GoogLeNet (configs/dcwh.py, idcwh.py):
  224 px, batch 128, 150 epochs, SGD lr 1e-3 x0.1 every 50 epochs, momentum 0.9, weight decay 5e-4;
  it needs ImageNet weights (`model.requires_pretrained`). `dataset` / `protocol`: another of the
  papers' settings (`use_protocol`, e.g. dataset 'cifar100' or protocol 'cifar10_mini'); both
  unset: CIFAR-10 full."""
  use_protocol(c, dataset, protocol or ('' if dataset else 'cifar10_full'))
  c.model.name = 'googlenet'
  c.model.requires_pretrained = True
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

  Arguments: dataset, protocol (as `supervised_config`), bits, quick (the embedded digits),
  features (fit on the `features` dataset's vectors as stored: `--config.dataset.data_dir=DIR`).
  """
  arg = parse_arg(arg, **{'dataset': '', 'bits': 32, 'quick': False, 'protocol': '', 'features': False, **defaults})
  c = base_config()
  c.method = method
  c.bits = 16 if arg.quick and arg.bits == 32 else arg.bits  # quick: DSH quick's length
  c.dataset.protocol = 'full'
  c.eval.topk = (1000,)
  # Unset, the dataset is Fashion-MNIST, or the one `protocol` names.
  use_protocol(c, arg.dataset or protocol_dataset(arg.protocol) or 'fashion_mnist', arg.protocol)
  # 'pixels': the dataset's own rows (pixels in [0, 1]; on the features dataset its vectors as
  # stored), or a .npy of features, one row per pool image (protocol order).
  c.loss.features = 'pixels'
  if arg.quick:
    c.dataset.name, c.dataset.protocol = 'digits', 'full'
    c.eval.topk = (100,)
  if arg.features:
    c.dataset.name = 'features'
  c.eval.pn = (10, 100) if arg.quick else (100, 1000)
  return c
