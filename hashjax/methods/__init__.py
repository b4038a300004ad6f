"""Hashing methods by name.

A method is a pure loss `loss_fn(params, batch, rng, *, forward, config) -> (loss, metrics)`
(the trainer binds `forward` and the method's config `config.loss`, leaving `(params, batch, rng)`),
plus how its network outputs become codes. Each method's loss lives in `hashjax/methods/<method>.py`.

What a method keeps besides the network comes in two kinds:
  * trained parameters, `params['method']` (IDCWH's class centers, GreedyHash's classifier): the
    optimizer updates them with the network (`optimizer.lr_multipliers` can give them their own rate);
  * state updated other than by gradient descent, `TrainState.method_state` (DCWH's recomputed
    class centers, DSDH's discrete codes B and classifier W, CSQ's fixed hash centers): never
    differentiated, never seen by the optimizer or its weight decay. The loss reads it as
    `batch['method_state']`; `refresh` recomputes it, jitted, from the network's outputs on the
    training set every `loss.refresh_epochs` epochs.
`forward(params, images, ...)` runs the network on `params['model']`.

Every hook takes one `Context` first; all hooks are optional.
"""

from __future__ import annotations

from collections.abc import Callable
import dataclasses

import jax
import ml_collections
import numpy as np

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
class Context:
  """What a method's hooks may read: the run's config (the method's own settings are `config.loss`)
  and its data split; `batch_extras`, which runs the network on the host side, also gets the
  network and the shardings."""

  config: ml_collections.ConfigDict
  protocol: object  # hashjax.data.protocols.Protocol
  forward: Callable | None = None  # forward(params, images, *, train, ...) -> outputs
  preprocess: Callable | None = None  # preprocess(uint8 images or feature vectors, rng, *, train) -> network input
  params_sharding: jax.sharding.Sharding | None = None
  batch_sharding: jax.sharding.Sharding | None = None

  @property
  def loss(self) -> ml_collections.ConfigDict:
    return self.config.loss

  @property
  def bits(self) -> int:
    return self.config.bits

  @property
  def num_classes(self) -> int:
    return self.protocol.num_classes

  @property
  def train_labels(self) -> np.ndarray:
    return self.protocol.labels[self.protocol.train]


@dataclasses.dataclass(frozen=True)
class Method:
  loss_fn: Callable
  # Network output -> real-valued codes whose sign (>= 0 -> bit 1) is the hash code.
  to_codes: Callable[[jax.Array], jax.Array] = lambda outputs: outputs
  num_views: int = 1  # augmented views of each image the loss sees (batch['views'] when > 1)
  # (ctx) -> None: checks config.loss once, when the run is built, naming the bad value.
  validate: Callable | None = None
  # (ctx, key) -> the method's trained parameters, params['method'].
  init_params: Callable | None = None
  # (ctx, key) -> the method's state, TrainState.method_state (read by the loss as batch['method_state']).
  init_state: Callable | None = None
  # (ctx, outputs (N, K), labels, mask (N,), state) -> new state: jitted, on the network's outputs
  # for the training set in eval mode (rows with mask 0 are padding), every `loss.refresh_epochs`.
  refresh: Callable | None = None
  # (ctx, initial params) -> None or extras(pool positions of a global batch) -> {key: per-example
  # rows} added to every batch on the host (DSH's fixed pairs, CIMON's global graph blocks).
  batch_extras: Callable | None = None
  # (ctx) -> {name: text}: choices the run log and final_metrics.json must state (CIMON's graph
  # feature source); the trainer adds the network's starting weights.
  describe: Callable | None = None


METHODS: dict[str, Method] = {
  'dsh': Method(dsh.loss_fn, validate=dsh.validate, batch_extras=dsh.batch_extras),
  'csq': Method(csq.loss_fn, validate=csq.validate, init_state=csq.init_state),
  'dpsh': Method(dpsh.loss_fn, validate=dpsh.validate),
  'dtsh': Method(dtsh.loss_fn, validate=dtsh.validate),
  'dcwh': Method(dcwh.loss_fn, init_params=dcwh.init_params, init_state=dcwh.init_state, refresh=dcwh.refresh),
  'idcwh': Method(idcwh.loss_fn, init_params=idcwh.init_params),
  'hashnet': Method(hashnet.loss_fn, to_codes=hashnet.to_codes, validate=hashnet.validate),
  'dsdh': Method(
    dsdh.loss_fn,
    validate=dsdh.validate,
    batch_extras=dsdh.batch_extras,
    init_state=dsdh.init_state,
    refresh=dsdh.refresh,
  ),
  'greedyhash': Method(greedyhash.loss_fn, validate=greedyhash.validate, init_params=greedyhash.init_params),
  'cimon': Method(
    cimon.loss_fn,
    to_codes=cimon.to_codes,
    num_views=2,
    validate=cimon.validate,
    batch_extras=cimon.batch_extras,
    describe=cimon.describe,
  ),
  'autoencoder': Method(autoencoder.loss_fn, to_codes=autoencoder.to_codes, validate=autoencoder.validate),
  'dlbhc': Method(dlbhc.loss_fn, to_codes=dlbhc.to_codes),
}


def get(name: str) -> Method:
  if name not in METHODS:
    raise ValueError(f'unknown method {name!r}; valid names: {", ".join(sorted(METHODS))}')
  return METHODS[name]
