"""A grid of runs: configs x code lengths x seeds, one workdir per cell, resumable.

  python -m hashjax.sweep --config configs/dsh.py --config configs/itq.py --bits 12,24,32,48 \
      --seeds 0,1,2 --workdir runs/sweep [--set optimizer.lr=1e-3 ...]
  python -m hashjax.report runs/sweep

Cells run one after another in this process (`--cells i/n` runs every n-th cell from i, so n
launches of the same command share a grid). A cell whose `final_metrics.json` exists is skipped;
a cell that was killed resumes from its own checkpoint. A cell folder whose `config.json` differs from
the config this sweep would run (another `--set`, a changed config file) stops the sweep before any
cell runs, so a table never mixes settings. Cell workdirs:
`<workdir>/<config name>/<bits>b_seed<seed>`.
"""

from __future__ import annotations

import argparse
import sys

from hashjax.cli import command
from hashjax.config import validate as config_validate
from hashjax.sweeps import grid as sweep_grid


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog='python -m hashjax.sweep', description=__doc__.split('\n\n')[0])
  p.add_argument('--config', action='append', required=True, help='config file[:arg]; repeat for more methods')
  p.add_argument('--bits', type=lambda t: sweep_grid.parse_ints(t, 'bits'), required=True, help='e.g. 12,24,32,48')
  p.add_argument('--seeds', type=lambda t: sweep_grid.parse_ints(t, 'seeds'), default=(0,), help='e.g. 0,1,2')
  p.add_argument('--workdir', required=True)
  p.add_argument('--set', action='append', default=[], metavar='KEY=VALUE', help='override in every cell')
  p.add_argument('--cells', default='0/1', help='i/n: run every n-th cell starting at i')
  p.add_argument('--verbosity', default=None, help=command.VERBOSITY_HELP)
  args = p.parse_args(argv)
  try:
    index, count = (int(v) for v in args.cells.split('/'))
    if not 0 <= index < count:
      raise ValueError
  except ValueError:
    p.error(f'--cells takes i/n with 0 <= i < n, got {args.cells!r}')

  def sweep():
    cells = sweep_grid.grid(args.config, args.bits, args.seeds)
    # A bad config or override fails before any cell runs.
    configs = [sweep_grid.cell_config(next(c for c in cells if c.spec == spec), args.set) for spec in args.config]
    sweep_grid.check_overrides(configs, args.set)
    for config in configs:
      config_validate.validate(config)
    statuses = sweep_grid.run(args.workdir, cells, args.set, (index, count))
    if not (statuses and statuses[-1]['status'] == 'preempted'):  # preempted: saved cleanly, exit 0 as main
      print(f'sweep finished: python -m hashjax.report {args.workdir}', flush=True)

  return command.run(sweep, verbose=args.verbosity is not None)


if __name__ == '__main__':
  sys.exit(main())
