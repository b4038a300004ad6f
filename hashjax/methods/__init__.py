"""Hashing methods by name.

A method is a pure loss `loss_fn(params, batch, rng, *, forward, config) -> (loss, metrics)`
(the trainer binds `forward` and the method's config, leaving `(params, batch, rng)`), plus how
its network outputs become codes. Each method's loss lives in `hashjax/methods/<method>.py`.

`params` is `{'model': network parameters, 'method': the method's own parameters}` (e.g. IDCWH's
class centers; `{}` for most methods); `forward(params, images, ...)` runs the network on
`params['model']`. Both groups are trained by the one optimizer (`optimizer.lr_multipliers` gives
a group its own learning rate or freezes it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax

from hashjax.methods import autoencoder
from hashjax.methods import cimon
from hashjax.methods import csq
from hashjax.methods import dcwh
from hashjax.methods import dlbhc
from hashjax.methods import dpsh
from hashjax.methods import dsdh
from hashjax.methods import dsh
from hashjax.methods import dtsh
from hashjax.methods import greedyhash
from hashjax.methods import hashnet
from hashjax.methods import idcwh


@dataclasses.dataclass(frozen=True)
class Method:
  loss_fn: Callable
  # Network output -> real-valued codes whose sign (>= 0 -> bit 1) is the hash code.
  to_codes: Callable[[jax.Array], jax.Array] = lambda outputs: outputs
  supervised: bool = True
  num_views: int = 1  # augmented views of each image the loss sees (batch['views'] when > 1)
  # Optional (config, forward, preprocess, initial params, protocol, params sharding, batch sharding)
  # -> None or extras(pool positions of a global batch) -> {key: per-example rows} added to the batch.
  batch_extras: Callable | None = None
  # Optional (loss config, bits, protocol, key) -> the method's own parameters (params['method']).
  # The protocol gives the class count and the training set (e.g. one row per training image).
  init_params: Callable | None = None
  # Optional (loss config, network outputs on the training set, their labels, method params) -> new
  # method params, applied every `loss.refresh_epochs` epochs (DCWH's centers = class means).
  refresh: Callable | None = None
  # Optional config -> {name: text}: choices the run log and final_metrics.json must state (CIMON's
  # graph feature source).
  describe: Callable | None = None


METHODS: dict[str, Method] = {
    'dsh': Method(dsh.loss_fn, batch_extras=dsh.batch_extras),
    'csq': Method(csq.loss_fn),
    'dpsh': Method(dpsh.loss_fn),
    'dtsh': Method(dtsh.loss_fn),
    'dcwh': Method(dcwh.loss_fn, init_params=dcwh.init_params, refresh=dcwh.refresh),
    'idcwh': Method(idcwh.loss_fn, init_params=idcwh.init_params),
    'hashnet': Method(hashnet.loss_fn, to_codes=hashnet.to_codes),
    'dsdh': Method(dsdh.loss_fn, batch_extras=dsdh.batch_extras, init_params=dsdh.init_params,
                   refresh=dsdh.refresh),
    'greedyhash': Method(greedyhash.loss_fn, init_params=greedyhash.init_params),
    'cimon': Method(cimon.loss_fn, to_codes=cimon.to_codes, supervised=False, num_views=2,
                    batch_extras=cimon.batch_extras, describe=cimon.describe),
    'autoencoder': Method(autoencoder.loss_fn, to_codes=autoencoder.to_codes, supervised=False),
    'dlbhc': Method(dlbhc.loss_fn, to_codes=dlbhc.to_codes),
}


def get(name: str) -> Method:
  if name not in METHODS:
    raise ValueError(f'unknown method {name!r}; valid names: {", ".join(sorted(METHODS))}')
  return METHODS[name]
