"""Downloads and converts a tensorflow-datasets dataset once, for offline training afterwards.

  python -m hashjax.prepare_data cifar10 [--data_dir DIR]

Writes array_record files, which `hashjax.data.sources` reads with `tfds.data_source` (no
TensorFlow at training time). Needs internet once. Fashion-MNIST also works offline from
Debian's `dataset-fashion-mnist` package, and `digits` ships with scikit-learn.
"""

import argparse
import sys

from hashjax import cli
from hashjax.data import sources


def prepare(name: str, data_dir: str | None = None) -> str:
  if name not in sources.TFDS_NUM_CLASSES:
    raise ValueError(f'{name!r} is not a tensorflow-datasets source here; valid names: '
                     f'{", ".join(sorted(sources.TFDS_NUM_CLASSES))}')
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  builder = tfds.builder(name, data_dir=data_dir, file_format='array_record')
  builder.download_and_prepare()
  return builder.data_dir


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog='python -m hashjax.prepare_data', description=__doc__.split('\n\n')[0])
  parser.add_argument('name', help=', '.join(sorted(sources.TFDS_NUM_CLASSES)))
  parser.add_argument('--data_dir', default=None, help='default: ~/tensorflow_datasets')
  parser.add_argument('--verbosity', default=None, help=cli.VERBOSITY_HELP)
  args = parser.parse_args(argv)

  def prepare_data():
    print(f'{args.name} prepared in {prepare(args.name, args.data_dir)}')
  return cli.run(prepare_data, verbose=args.verbosity is not None)


if __name__ == '__main__':
  sys.exit(main())
