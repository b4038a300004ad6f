"""Evaluation of a finished (or running) training run from its workdir alone.

Rebuilds the run from the `config.json` it wrote, loads the latest checkpoint's parameters,
encodes the protocol's query and database sets, and writes into the workdir:
`eval_metrics.json` (the run's metrics plus the P@N and PR curves), `codes.npz` (packed query and
database codes with labels and pool ids, for `python -m hashjax.evaluate` or other tools),
`pr_curve.png`, `p_at_n.png` and `codes_tsne.png` (t-SNE of the query codes, d_w/d_b in its title
and in the metrics).
"""

from __future__ import annotations

import json
import os

import ml_collections

from hashjax.config import resume as config_resume
from hashjax.eval import code_embedding
from hashjax.eval import evaluator
from hashjax.eval import plots
from hashjax.retrieval import codes as codes_lib
from hashjax.retrieval import pr_curve as pr_curve_lib
from hashjax.train import trainer
from hashjax.workdir import checkpoint
from hashjax.workdir import run_files

P_AT_N_POINTS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)


def load_config(workdir: str) -> ml_collections.ConfigDict:
  path = os.path.join(workdir, 'config.json')
  if not os.path.isfile(path):
    raise FileNotFoundError(
      f'{workdir!r} is not a hashjax workdir (no config.json); train one with '
      f'python -m hashjax.main --config ... --workdir {workdir}'
    )
  with open(path) as f:
    return config_resume.upgrade(json.load(f))  # an older run's config.json may predate some keys


def load_run(workdir: str, step: int | None = None):
  """(config, run, params, step): the run rebuilt from its config.json, with the parameters of its
  checkpoint `step` (default: the latest), verified against their checksums."""
  config = load_config(workdir)
  run = trainer.build(config, for_training=False)
  params, step = checkpoint.load_params(workdir, run.state.params, step)
  return config, run, params, step


def encode_workdir(workdir: str, step: int | None = None):
  """(config, run, query codes, database codes, step) of the workdir's checkpoint `step` (default:
  the latest); codes are the real-valued network codes (sign >= 0 is bit 1) in the protocol's
  query/database order."""
  config, run, params, step = load_run(workdir, step)
  q, db = encode_protocol(config, run, params)
  return config, run, q, db, step


def encode_protocol(config, run, params):
  """(query codes, database codes) of `params`, real-valued, in the protocol's order."""
  protocol, bs = run.protocol, config.eval.batch_size
  q = evaluator.encode_set(run.encode, params, protocol.images, protocol.query, bs, run.data_sharding)
  db = evaluator.encode_set(run.encode, params, protocol.images, protocol.database, bs, run.data_sharding)
  return q, db


def evaluate_workdir(workdir: str, tsne_sample: int = 2000, step: int | None = None) -> dict:
  """Writes the files above (`tsne_sample` query codes in the t-SNE; 0 skips it); returns the metrics."""
  config, run, q, db, step = encode_workdir(workdir, step)
  protocol = run.protocol
  bits = q.shape[1]
  qp, dp = codes_lib.pack_codes(q), codes_lib.pack_codes(db)
  ql, dl = protocol.labels[protocol.query], protocol.labels[protocol.database]
  ns = tuple(n for n in P_AT_N_POINTS if n <= len(protocol.database))
  metrics = evaluator.mesh_metrics(
    qp,
    ql,
    dp,
    dl,
    mesh=run.mesh,
    bits=bits,
    topk=tuple(config.eval.topk),
    radius=config.eval.radius,
    pn=ns,
    ties=config.eval.ties,
  )
  pr = pr_curve_lib.pr_curve_by_radius(qp, ql, dp, dl, bits=bits)
  title = f'{config.method} {bits} bits, {config.dataset.name} (step {step})'
  out = {
    'step': step,
    **{k: v for k, v in metrics.items() if not (k.startswith('P@') and 'H' not in k)},
    'P@N': {str(n): metrics[f'P@{n}'] for n in ns},
    'pr_curve': {
      'radius': pr['radius'].tolist(),
      'precision': pr['precision'].tolist(),
      'recall': pr['recall'].tolist(),
    },
    'files': [
      plots.pr_curve(pr['precision'], pr['recall'], os.path.join(workdir, 'pr_curve.png'), title),
      plots.precision_at_n(ns, [metrics[f'P@{n}'] for n in ns], os.path.join(workdir, 'p_at_n.png'), title),
    ],
  }
  if tsne_sample:
    tsne = code_embedding.tsne_plot(q, ql, os.path.join(workdir, 'codes_tsne.png'), title=title, sample=tsne_sample)
    out.update({k: tsne[k] for k in ('d_w', 'd_b', 'd_w/d_b')})
    out['files'].append(tsne['file'])
  run_files.write_codes(workdir, protocol, qp, dp, bits)
  with open(os.path.join(workdir, 'eval_metrics.json'), 'w') as f:
    json.dump(out, f, indent=2)
  return out
