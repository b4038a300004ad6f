"""Feature vectors of a dataset's splits from a network, for hashing them with the `features` dataset:

  python -m hashjax.extract_features --config configs/cimon.py:backbone=dinov2_vits14,dataset=cifar10 \
      --config.model.pretrained=weights/dinov2_vits14 --out feats/cifar10_dinov2 [--dtype float16]
  python -m hashjax.extract_features --workdir runs/dsh --out feats/fmnist_dsh [--step N]
  python -m hashjax.main --config configs/dsh.py:features --config.dataset.data_dir=feats/fmnist_dsh

`--config` (any config file, with `--config.key=value` overrides): its model's feature layer
(e.g. a ViT / DINOv2 class token; hashjax/models/__init__.py FEATURE_LAYERS), its preprocessing
and its dataset; `--workdir`: a trained run's network (checkpoint `--step`, default the latest).
Writes `<split>_features.npy` / `<split>_labels.npy` for every split of the dataset into `--out`,
with `progress.json`; data-parallel over every device; a killed run rerun with the same arguments
resumes. The library: hashjax/eval/features.py. Bad input: one line on stderr, exit code 2.
"""

import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from hashjax.cli import command
from hashjax.eval import features
from hashjax.parallel import distributed

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file: path/to/config.py[:arg].', lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'A training run to take the network (and dataset) from.')
_STEP = flags.DEFINE_integer('step', None, 'With --workdir: the checkpoint step (default: the latest).')
_OUT = flags.DEFINE_string('out', None, 'Output folder (the features dataset).')
_DTYPE = flags.DEFINE_enum('dtype', 'float32', list(features.DTYPES), 'How the features are stored.')
_CHUNK = flags.DEFINE_integer('chunk_batches', 16, 'Global batches (eval.batch_size images) between progress records.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  verbose = flags.FLAGS['verbosity'].present
  if not verbose:
    logging.set_verbosity(logging.WARNING)
  distributed.initialize_if_multiprocess()

  def report(split, done, total):
    print(f'{split}: {done}/{total} rows', flush=True)

  def extract():
    if _STEP.value is not None and _WORKDIR.value is None:
      raise ValueError('--step selects a checkpoint of --workdir; give --workdir')
    progress = features.extract(
      _OUT.value,
      config=_CONFIG.value,
      workdir=_WORKDIR.value,
      step=_STEP.value,
      dtype=_DTYPE.value,
      chunk_batches=_CHUNK.value,
      on_chunk=report,
    )
    rows = ', '.join(f'{s} {n}' for s, (_, n) in progress['rows'].items())
    print(
      f'{progress["width"]}-d {progress["dtype"]} features of {progress["model"]} ({progress["feature_layer"]}; '
      f'weights {progress["weights"]}): {rows} rows in {_OUT.value}; train on them with '
      f'--config.dataset.name=features --config.dataset.data_dir={_OUT.value}',
      flush=True,
    )

  sys.exit(command.run(extract, verbose=verbose))


if __name__ == '__main__':
  flags.mark_flag_as_required('out')
  command.check_config_overrides(sys.argv)
  app.run(main)
