"""Classifiers on the frozen hash codes of a training run: an MLP and a linear probe.

  python -m hashjax.classify --workdir runs/cimon_stl10 [--epochs 30] [--hidden 512] [--lr 1e-3]
                             [--classes_in_plot 3] [--seed 0]

Reuses the workdir's latest checkpoint (the hashing network is not retrained), encodes the labelled
training images and the test images to +-1 codes, trains both classifiers, prints their test
accuracies and writes classify_metrics.json, classify_curves.png and codes_pca.png into the
workdir. Which images train and test: hashjax/analysis/code_classifier.py. Bad input: one line on stderr,
exit code 2.
"""

import argparse
import sys

from hashjax.analysis import code_classifier
from hashjax.cli import command


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog='python -m hashjax.classify', description=__doc__.split('\n\n')[0])
  p.add_argument('--workdir', required=True, help='a training run folder (config.json + checkpoints/)')
  p.add_argument('--epochs', type=int, default=30)
  p.add_argument('--hidden', type=int, default=512, help="the MLP's hidden units")
  p.add_argument('--lr', type=float, default=1e-3, help='Adam learning rate (both classifiers)')
  p.add_argument('--batch_size', type=int, default=256)
  p.add_argument('--classes_in_plot', type=int, default=3, help='classes in codes_pca.png')
  p.add_argument('--seed', type=int, default=0)
  p.add_argument('--step', type=int, default=None, help='checkpoint step to encode with (default: the latest)')
  p.add_argument('--verbosity', default=None, help=command.VERBOSITY_HELP)
  args = p.parse_args(argv)

  def classify():
    out = code_classifier.classify_workdir(
      args.workdir,
      epochs=args.epochs,
      hidden=args.hidden,
      lr=args.lr,
      batch_size=args.batch_size,
      seed=args.seed,
      classes_in_plot=args.classes_in_plot,
      step=args.step,
    )
    print(
      f'{out["bits"]}-bit codes, {out["sets"]}: test accuracy MLP {out["mlp"]["test_accuracy"]:.4f}, '
      f'linear probe {out["linear"]["test_accuracy"]:.4f} (chance {out["chance"]:.4f}); '
      f'{args.workdir}/classify_metrics.json'
    )

  return command.run(classify, verbose=args.verbosity is not None)


if __name__ == '__main__':
  sys.exit(main())
