"""Pair verification on frozen hash codes (seed 004's DSH study): is this pair of images similar?

    python -m hashjax.pair_verification --workdir runs/dsh [--pairs 200000] [--test_pairs 100000]
        [--hidden 64] [--epochs 20] [--lr 1e-3] [--batch_size 200] [--balanced] [--seed 0]
    python -m hashjax.pair_verification --train_codes T.npy --train_labels TL.npy \
        --test_codes Q.npy --test_labels QL.npy [--bits 48] ...

A small classifier reads |b_1 - b_2| / 2 (the bits where the two codes differ, in {0, 1}) and
predicts similar (share a class, or at least one label for multi-hot labels) or dissimilar. It is
fitted on `pairs` random pairs of the fit set's codes and scored on `test_pairs` random pairs of
the test set's codes (seeded; i != j; `balanced`: half similar pairs instead of the natural
fraction). The classifier: one hidden ReLU layer of `hidden` units (0: logistic regression, a
learned per-bit weighting of the Hamming distance) and a sigmoid output, binary cross-entropy, Adam,
no regularisation (the seed: "no regularisation, 200,000 pairs, 100 epochs, batch 200"; it reports
precision 0.7176, recall 0.7268, average precision 0.6942 with 12-bit DSH codes on CIFAR-10).

Reported on the test pairs: precision, recall, F1 and accuracy at probability 0.5, average
precision (AP, the area under the precision-recall curve of the scores, scikit-learn's
`average_precision_score`), the similar fraction (the AP of a random scorer), and the AP of the
plain Hamming distance (score = -distance) as the no-training baseline.

From a workdir (its latest checkpoint, the network is not retrained): test set = the protocol's
queries; fit set = its database images that are not queries, else its training images that are
not queries (test_vs_test). Writes `pair_verification.json` into the workdir.
"""

from __future__ import annotations

import argparse
import json
import sys

from hashjax.analysis import pair_verification as pair_verification_lib
from hashjax.cli import command


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog='python -m hashjax.pair_verification', description=__doc__.split('\n\n')[0])
  p.add_argument('--workdir', help='a training run folder (config.json + checkpoints/)')
  for name in ('train_codes', 'train_labels', 'test_codes', 'test_labels'):
    p.add_argument(f'--{name}', help='.npy (codes: +-1, {0,1}, real-valued or packed uint32 with --bits)')
  p.add_argument('--bits', type=int, default=None, help='code length of packed uint32 codes')
  p.add_argument('--pairs', type=int, default=pair_verification_lib.NUM_PAIRS, help='random training pairs')
  p.add_argument('--test_pairs', type=int, default=pair_verification_lib.NUM_TEST_PAIRS, help='random test pairs')
  p.add_argument('--hidden', type=int, default=64, help='hidden ReLU units (0: logistic regression)')
  p.add_argument('--epochs', type=int, default=20)
  p.add_argument('--lr', type=float, default=1e-3)
  p.add_argument('--batch_size', type=int, default=200)
  p.add_argument('--balanced', action='store_true', help='half similar pairs instead of random pairs')
  p.add_argument('--seed', type=int, default=0)
  p.add_argument('--step', type=int, default=None, help='with --workdir: the checkpoint step (default: the latest)')
  p.add_argument('--verbosity', default=None, help=command.VERBOSITY_HELP)
  args = p.parse_args(argv)
  kwargs = dict(
    num_pairs=args.pairs,
    num_test_pairs=args.test_pairs,
    hidden=args.hidden,
    epochs=args.epochs,
    lr=args.lr,
    batch_size=args.batch_size,
    balanced=args.balanced,
    seed=args.seed,
  )
  files = [args.train_codes, args.train_labels, args.test_codes, args.test_labels]

  def pair_verification():
    if args.workdir and not any(files):
      out = pair_verification_lib.verify_workdir(args.workdir, step=args.step, **kwargs)
      where = f'; {args.workdir}/pair_verification.json'
    elif all(files) and not args.workdir:
      codes = [
        pair_verification_lib.load_codes(args.train_codes, 'train codes', args.bits),
        pair_verification_lib.load_codes(args.test_codes, 'test codes', args.bits),
      ]
      labels = [
        pair_verification_lib.load_labels(args.train_labels, 'train labels'),
        pair_verification_lib.load_labels(args.test_labels, 'test labels'),
      ]
      out, where = pair_verification_lib.verify(codes[0], labels[0], codes[1], labels[1], **kwargs), ''
      print(json.dumps(out))
    else:
      raise ValueError('pass --workdir, or all of --train_codes --train_labels --test_codes --test_labels')
    c = out['classifier']
    print(
      f'{out["bits"]}-bit codes, {out["test_pairs"]} test pairs ({out["test_similar_fraction"]:.3f} similar): '
      f'precision {c["precision"]:.4f} recall {c["recall"]:.4f} AP {c["average_precision"]:.4f} '
      f'(Hamming distance AP {out["hamming_average_precision"]:.4f}){where}'
    )

  return command.run(pair_verification, verbose=args.verbosity is not None)


if __name__ == '__main__':
  sys.exit(main())
