"""Paper-style tables and figures from finished runs (a sweep folder, or any folder of workdirs).

  python -m hashjax.report runs/sweep [--out runs/sweep]

Every folder below the root holding `final_metrics.json` + `config.json` is one cell; cells are
grouped by their parent folder's name (the config name in a sweep) and code length. Writes
`report.md` (methods x bits tables of mean ± std over seeds, with the dataset, protocol and tie
rule named above them), `report.csv` (one row per cell) and figures: mAP and P@H<=r against bits,
PR curves (Hamming-radius sweep) and P@N curves per code length, training loss curves, and a 2-D
PCA of the database codes per method. Curves and PCA need each cell's `codes.npz`: shallow
baselines write it, and a deep run gets it here from its checkpoint (`hashjax.eval.workdir_eval`), which
re-encodes query and database; `--no-figures` skips that and writes the tables and CSV alone.

`--previous OLD/report.csv` adds the cells of an earlier report whose run folders are gone (a
table filled over several machines): they join the tables and metric plots, not the curves; a
cell found below the root replaces the row of the same name, bits and seed.
"""

from __future__ import annotations

import argparse
import sys

from hashjax.cli import command
from hashjax.sweeps import report as sweep_report


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog='python -m hashjax.report', description=__doc__.split('\n\n')[0])
  p.add_argument('root', help='a sweep folder or any folder of run workdirs')
  p.add_argument('--out', default=None, help='where report.md, report.csv and figures go (default: root)')
  p.add_argument(
    '--no-figures',
    action='store_true',
    help='tables and CSV only (the figures re-encode every deep run from its checkpoint)',
  )
  p.add_argument(
    '--previous',
    action='append',
    default=[],
    metavar='CSV',
    help="an earlier report.csv whose cells' run folders are gone (repeatable); the root's cells win",
  )
  p.add_argument('--verbosity', default=None, help=command.VERBOSITY_HELP)
  args = p.parse_args(argv)

  def report():
    result = sweep_report.write_report(
      args.root, args.out, with_figures=not args.no_figures, previous=tuple(args.previous)
    )
    print(f'{result["report"]} ({result["cells"]} runs), {result["csv"]}, {len(result["figures"])} figures')

  return command.run(report, verbose=args.verbosity is not None)


if __name__ == '__main__':
  sys.exit(main())
