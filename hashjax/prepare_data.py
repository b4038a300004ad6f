"""Downloads and converts a tensorflow-datasets dataset once, for offline training afterwards.

  python -m hashjax.prepare_data cifar10 [--data_dir DIR]

Writes array_record files, which `hashjax.data.sources` reads with `tfds.data_source` (no
TensorFlow at training time). Needs internet once. Fashion-MNIST also works offline from
Debian's `dataset-fashion-mnist` package, and `digits` ships with scikit-learn.
"""

import argparse
import sys

from hashjax.cli import command
from hashjax.data import prepare as prepare_lib
from hashjax.data import sources


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog='python -m hashjax.prepare_data', description=__doc__.split('\n\n')[0])
  parser.add_argument('name', help=', '.join(sorted(sources.TFDS_NUM_CLASSES)))
  parser.add_argument('--data_dir', default=None, help='default: ~/tensorflow_datasets')
  parser.add_argument('--verbosity', default=None, help=command.VERBOSITY_HELP)
  args = parser.parse_args(argv)

  def prepare_data():
    print(f'{args.name} prepared in {prepare_lib.prepare(args.name, args.data_dir)}')

  return command.run(prepare_data, verbose=args.verbosity is not None)


if __name__ == '__main__':
  sys.exit(main())
