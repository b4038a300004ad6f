"""Prepares a dataset once, or checks files you downloaded, before any training.

  python -m hashjax.prepare_data cifar10 [--data_dir DIR]          # a tensorflow-datasets copy (internet once)
  python -m hashjax.prepare_data cifar10 --src cifar-10-python.tar.gz
  python -m hashjax.prepare_data nus_wide_21 --src NUS-WIDE/ [--list_dir data/nuswide_21]

Without --src: downloads and writes array_record files, which `hashjax.data.sources` reads with
`tfds.data_source` (no TensorFlow at training time). Fashion-MNIST also works offline from Debian's
`dataset-fashion-mnist` package, and `digits` ships with scikit-learn.
With --src: checks the archive or folder (hashjax/data/prepare.py): the published image counts and
md5 sums (CIFAR-10/100, STL-10), every line of DeepHash-pytorch's lists, and that every listed image
exists and decodes. Exit status 0 and a one-line summary when all is well; 2 and one line naming
the files (with their list file and line) and the fix when not.
"""

import argparse
import sys

from hashjax.cli import command
from hashjax.data import prepare as prepare_lib
from hashjax.data import sources


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog='python -m hashjax.prepare_data', description=__doc__.split('\n\n')[0])
  parser.add_argument(
    'name',
    help=f'without --src: {", ".join(sorted(sources.TFDS_NUM_CLASSES))}; with --src: {", ".join(sorted(prepare_lib.CHECKS))}',
  )
  parser.add_argument('--data_dir', default=None, help='tensorflow-datasets folder (default: ~/tensorflow_datasets)')
  parser.add_argument(
    '--src',
    default=None,
    help='check this downloaded archive or folder instead (image lists: the folder the listed paths are relative to)',
  )
  parser.add_argument(
    '--list_dir', default=None, help='image lists: the folder of train/test/database.txt (default: --src)'
  )
  parser.add_argument('--verbosity', default=None, help=command.VERBOSITY_HELP)
  args = parser.parse_args(argv)

  def prepare_data():
    if args.src is None:
      if args.list_dir:
        raise ValueError('--list_dir needs --src (the image folder the lists refer to)')
      print(f'{args.name} prepared in {prepare_lib.prepare(args.name, args.data_dir)}')
      return
    if args.data_dir:
      raise ValueError('--data_dir is the tensorflow-datasets folder: with --src it does not apply')
    print(prepare_lib.check(args.name, args.src, args.list_dir))

  return command.run(prepare_data, verbose=args.verbosity is not None)


if __name__ == '__main__':
  sys.exit(main())
