"""The config schema every method shares, argument parsing for `configs/<method>.py:arg`, and checks.

Config files call `base_config()` and change what their method needs; with `lock_config=True` in
`main.py`, an override of a key that is not in the schema fails at once.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os

import ml_collections as mlc

from hashjax import baselines
from hashjax import methods
from hashjax import models
from hashjax import optim
from hashjax.data import augment
from hashjax.data import protocols
from hashjax.data import sources


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
    out[key] = value.lower() in ('1', 'true', 'yes') if kind is bool else kind(value) if defaults[key] is not None else value
  return out


def load_config_file(spec: str) -> mlc.ConfigDict:
  """'configs/dsh.py:quick,bits=12' -> that file's get_config('quick,bits=12')."""
  path, _, arg = spec.partition(':')
  if not os.path.isfile(path):
    raise FileNotFoundError(f'config file {path!r} not found (configs are in configs/: '
                            f'{", ".join(sorted(n for n in os.listdir("configs") if n.endswith(".py"))) if os.path.isdir("configs") else "?"})')
  module_spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg or None)


def check_override_keys(config: mlc.ConfigDict, argv: list[str], flag: str = 'config') -> None:
  """Fails on `--config.a.b=...` overrides whose key is not in the config, listing the valid keys."""
  prefix = f'--{flag}.'
  for arg in argv:
    if not arg.startswith(prefix):
      continue
    path = arg[len(prefix):].split('=')[0].split('.')
    node = config
    for depth, key in enumerate(path):
      if not isinstance(node, mlc.ConfigDict) or key not in node:
        where = '.'.join(path[:depth]) or 'the top level'
        valid = ', '.join(sorted(node.keys())) if isinstance(node, mlc.ConfigDict) else '(not a group)'
        raise KeyError(f'unknown config key {".".join(path)!r} in {arg!r}: {where} has {valid}')
      node = node[key]


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
  c.dataset = mlc.ConfigDict(dict(name='digits', protocol='full', split_seed=0, data_dir='', reads='auto',
                                  protocol_args=mlc.ConfigDict(), list_dir='', decode_size=0, label_type=''))
  c.image_size = 0            # 0: native size; else resize (on device) to image_size x image_size
  c.augment = 'none'
  c.normalize = 'dataset'     # per-channel mean/std of the training images, or 'imagenet' (pretrained backbones)
  c.model = mlc.ConfigDict(dict(name='dsh_net', dtype='float32', pretrained=''))  # pretrained: hashjax.weights dir
  c.loss = mlc.ConfigDict()   # the method's own hyperparameters
  c.batch_size = 200
  c.num_epochs = 10
  c.num_steps = 0             # > 0 overrides num_epochs
  c.optimizer = mlc.ConfigDict(dict(name='sgd', lr=1e-3, momentum=0.9, weight_decay=0.0, schedule='constant',
                                    warmup_steps=0, decay_epochs=(), decay_factor=0.1, end_lr=0.0,
                                    grad_clip_norm=0.0, nesterov=False,
                                    lr_multipliers=''))  # e.g. 'model/head/=10,method/=0.5' (optim.py)
  c.eval = mlc.ConfigDict(dict(every_steps=0, batch_size=1000, topk=(1000,), radius=2, pn=(100, 1000),
                               ties='stable'))
  # restore_step: 0 resumes from the latest checkpoint, N > 0 from step N on purpose (later steps are
  # moved to checkpoints_set_aside/). allow_changes: 'optimizer.lr,loss.' lets a resume change these
  # keys (or groups) besides the RESUMABLE_KEYS, e.g. a lower lr after a NaN stop.
  c.checkpoint = mlc.ConfigDict(dict(every_steps=1000, keep=3, restore_step=0, allow_changes=''))
  c.log_every_steps = 50
  c.init_from = ''            # another run's workdir: start from its parameters
  c.num_devices = 0           # 0: every device of every process
  return c


def validate(c) -> None:
  """Fails early, naming the bad value and the valid choices."""
  if c.method not in methods.METHODS and c.method not in baselines.BASELINES:
    raise ValueError(f'unknown method {c.method!r}; valid names: '
                     f'{", ".join(sorted([*methods.METHODS, *baselines.BASELINES]))}')
  if c.model.name not in models.MODELS:
    raise ValueError(f'unknown model {c.model.name!r}; valid names: {", ".join(sorted(models.MODELS))}')
  if c.dataset.name not in sources.SOURCES:
    raise ValueError(f'unknown dataset {c.dataset.name!r}; valid names: {", ".join(sorted(sources.SOURCES))}')
  if c.dataset.protocol not in protocols.RECIPES:
    raise ValueError(f'unknown protocol {c.dataset.protocol!r}; valid names: {", ".join(sorted(protocols.RECIPES))}')
  if c.dataset.get('reads', 'auto') not in DATASET_READS:
    raise ValueError(f'unknown dataset.reads {c.dataset.reads!r}; valid names: {", ".join(DATASET_READS)}')
  augment.get(c.augment)
  if c.optimizer.name not in optim.OPTIMIZERS:
    raise ValueError(f'unknown optimizer {c.optimizer.name!r}; valid names: {", ".join(optim.OPTIMIZERS)}')
  if not isinstance(c.bits, int) or c.bits <= 0:
    raise ValueError(f'bits must be a positive integer (the code length), got {c.bits!r}')
  for key in ('batch_size', 'log_every_steps'):
    if c[key] <= 0:
      raise ValueError(f'{key} must be positive, got {c[key]}')
  if c.num_steps <= 0 and c.num_epochs <= 0:
    raise ValueError('set num_epochs or num_steps to a positive number')
  if c.eval.ties not in ('stable', 'numpy', 'expected'):
    raise ValueError(f'eval.ties must be stable, numpy or expected, got {c.eval.ties!r}')
  flat = flat_config(c)
  for key, value in flat.items():
    values = value if isinstance(value, list) else [value]
    if any(isinstance(v, float) and not math.isfinite(v) for v in values):
      raise ValueError(f'{key} must be a finite number, got {value!r}')
  if not c.optimizer.lr > 0:
    raise ValueError(f'optimizer.lr must be positive, got {c.optimizer.lr!r} (to freeze parameters: '
                     f"optimizer.lr_multipliers='model/=0')")
  if c.checkpoint.every_steps <= 0 or c.checkpoint.keep <= 0 or c.checkpoint.restore_step < 0:
    raise ValueError('checkpoint.every_steps and checkpoint.keep must be positive and checkpoint.restore_step >= 0 '
                     f'(0: the latest), got {c.checkpoint.every_steps}, {c.checkpoint.keep}, '
                     f'{c.checkpoint.restore_step}')
  for key in filter(None, (k.strip() for k in c.checkpoint.allow_changes.split(','))):
    if not any(_matches(k, key) for k in flat):
      raise ValueError(f'checkpoint.allow_changes names {key!r}, which is not a config key (a group ends with '
                       f"'.', e.g. 'loss.')")


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
  c.optimizer.update(name='sgd', lr=1e-3, momentum=0.9, weight_decay=5e-4, schedule='step',
                     decay_epochs=(50, 100), decay_factor=0.1)


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


# ---------------------------------------------------------------- resuming
# Keys a resumed run may change: how long, how often, where and how fast it runs, not what it
# computes. A group ends with '.'. Extending num_epochs / num_steps stretches a schedule over the
# total steps from the restored step on. Any other difference from the checkpoint's config stops
# the run before it writes anything, unless `checkpoint.allow_changes` names the key on purpose.
RESUMABLE_KEYS = ('num_epochs', 'num_steps', 'log_every_steps', 'checkpoint.', 'eval.', 'num_devices',
                  'dataset.reads', 'dataset.data_dir', 'dataset.list_dir')


def _matches(key: str, pattern: str) -> bool:
  return key == pattern or (pattern.endswith('.') and key.startswith(pattern))


def flatten(tree: dict, prefix: str = '') -> dict:
  """{'a': {'b': 1}} -> {'a.b': 1}."""
  out = {}
  for k, v in tree.items():
    if isinstance(v, dict) and v:
      out.update(flatten(v, f'{prefix}{k}.'))
    else:
      out[f'{prefix}{k}'] = v
  return out


def flat_config(c) -> dict:
  """The config as JSON values (tuples become lists) under dotted keys."""
  return flatten(json.loads(c.to_json_best_effort()))


ABSENT = '<absent>'


def differences(old: dict, new: dict) -> dict[str, tuple]:
  """{key: (old value, new value)} for every key where two flat configs differ. A key that only one
  side has and that holds the schema's default there (a key added to hashjax after the other run)
  is no difference."""
  defaults = flat_config(base_config())
  out = {}
  for k in sorted(set(old) | set(new)):
    a, b = old.get(k, ABSENT), new.get(k, ABSENT)
    if a != b and not (ABSENT in (a, b) and k in defaults and defaults[k] in (a, b)):
      out[k] = (a, b)
  return out


def resume_conflicts(changes: dict[str, tuple], allow: str = '') -> dict[str, tuple]:
  """The `differences` a resume may not make: not in RESUMABLE_KEYS nor in `allow` ('a.b,c.')."""
  allowed = RESUMABLE_KEYS + tuple(filter(None, (k.strip() for k in allow.split(','))))
  return {k: v for k, v in changes.items() if not any(_matches(k, p) for p in allowed)}


def format_differences(changes: dict[str, tuple], limit: int = 8) -> str:
  items = [f'{k}: {a!r} -> {b!r}' for k, (a, b) in changes.items()]
  return '; '.join(items[:limit]) + (f'; and {len(items) - limit} more' if len(items) > limit else '')


def checkpoint_meta(c) -> dict:
  """What a checkpoint records of the run that wrote it: the whole config (and, for checkpoints
  older than that, the three keys they recorded)."""
  return {'method': c.method, 'model': c.model.name, 'bits': c.bits, 'config': flat_config(c)}
