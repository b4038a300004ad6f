"""Train and evaluate a hashing method:

  python -m hashjax.main --config configs/dsh.py:quick [--workdir runs/x] [--config.bits=32 ...]

This file is intentionally thin: the logic lives in hashjax/train/trainer.py, which tests import.
"""

import os
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from hashjax.cli import command
from hashjax.parallel import distributed
from hashjax.train import trainer

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file: path/to/config.py[:arg].', lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Run folder (checkpoints, metrics); default runs/<config>.')
_FORCE_UNLOCK = flags.DEFINE_bool(
  'force_unlock',
  False,
  "Take over the workdir's lock left by a run on another host (only once that run is surely not running).",
)


def default_workdir(config_path: str, config) -> str:
  stem = os.path.splitext(os.path.basename(config_path.split(':')[0]))[0]
  return os.path.join('runs', f'{stem}_{config.dataset.name}_{config.bits}b')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  verbose = flags.FLAGS['verbosity'].present
  if not verbose:
    logging.set_verbosity(logging.WARNING)  # Orbax logs every save at INFO; -v 0 brings it back
  distributed.initialize_if_multiprocess()
  config = _CONFIG.value
  workdir = _WORKDIR.value or default_workdir(flags.FLAGS['config'].config_filename, config)

  def train_and_evaluate():
    trainer.train_and_evaluate(config, workdir, force_unlock=_FORCE_UNLOCK.value)

  sys.exit(command.run(train_and_evaluate, verbose=verbose))


if __name__ == '__main__':
  flags.mark_flag_as_required('config')
  command.check_config_overrides(sys.argv)
  app.run(main)
