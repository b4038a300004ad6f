"""How fast the training input of a config runs, without the model: for choosing `dataset.workers`.

  python -m hashjax.data.throughput --config configs/dsh.py:dataset=nus_wide_21 \
      --config.dataset.data_dir=/data/nuswide [--config.dataset.workers=8] [--batches 50] [--skip 5]

Iterates the training input exactly as training reads it (hashjax/data/streaming.py: decode, resize,
the method's extras, the transfer to the devices; no step) for `--skip` warm-up batches (worker
start-up), then `--batches` timed ones, and prints one JSON line: images_per_s, batches_per_s,
batches, batch_size, workers, streaming (whether the images are decoded from disk), seconds.
"""

import json
import sys
import time

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from hashjax.cli import command
from hashjax.config import validate as config_validate
from hashjax.data import streaming
from hashjax.parallel import sharding
from hashjax.train import trainer

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file: path/to/config.py[:arg].', lock_config=True)
_BATCHES = flags.DEFINE_integer('batches', 50, 'timed batches')
_SKIP = flags.DEFINE_integer('skip', 5, 'warm-up batches before the timing (worker start-up)')


def measure(config, batches: int, skip: int) -> dict:
  """The input's throughput over `batches` global batches after `skip` warm-up ones."""
  config_validate.validate(config)
  protocol = trainer.load_protocol(config)
  mesh = sharding.make_mesh(config.num_devices or None)
  train = trainer.train_batches(config, protocol)
  with streaming.Feed(
    train,
    0,
    skip + batches,
    sharding.data_sharding(mesh),
    workers=config.dataset.workers,
    prefetch=config.dataset.prefetch,
  ) as feed:
    for _ in range(skip):
      next(feed)['image'].block_until_ready()
    t0 = time.perf_counter()
    for _ in range(batches):
      next(feed)['image'].block_until_ready()
    seconds = time.perf_counter() - t0
  return {
    'images_per_s': round(batches * config.batch_size / seconds, 1),
    'batches_per_s': round(batches / seconds, 3),
    'batches': batches,
    'batch_size': config.batch_size,
    'workers': feed.workers,
    'streaming': feed.streaming,
    'seconds': round(seconds, 3),
  }


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  verbose = flags.FLAGS['verbosity'].present
  if not verbose:
    logging.set_verbosity(logging.WARNING)
  sys.exit(command.run(lambda: print(json.dumps(measure(_CONFIG.value, _BATCHES.value, _SKIP.value))), verbose=verbose))


if __name__ == '__main__':
  flags.mark_flag_as_required('config')
  app.run(main)
