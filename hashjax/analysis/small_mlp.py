"""A small MLP on frozen codes, trained by minibatch Adam: the classifiers of `hashjax.classify`
(classes from codes) and `hashjax.pair_verification` (similar / dissimilar from |b1 - b2|)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from flax import nnx
import jax
import jax.numpy as jnp
import optax


class MLP(nnx.Module):
  """in -> hidden (ReLU) -> out, or in -> out when hidden == 0 (linear); nnx.Linear's initialisation
  (LeCun normal kernels, zero biases)."""

  def __init__(self, in_dim: int, hidden: int, out_dim: int, *, rngs: nnx.Rngs):
    self.hidden = nnx.Linear(in_dim, hidden, rngs=rngs) if hidden else None
    self.out = nnx.Linear(hidden or in_dim, out_dim, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    if self.hidden is not None:
      x = jax.nn.relu(self.hidden(x))
    return self.out(x)


def init(key: jax.Array, in_dim: int, hidden: int, out_dim: int) -> tuple[Callable, nnx.State]:
  """(apply(params, x) -> logits, params): the MLP as a pure function of its parameters, for jit
  and optax."""
  graphdef, params = nnx.split(MLP(in_dim, hidden, out_dim, rngs=nnx.Rngs(key)))
  return (lambda params, x: nnx.merge(graphdef, params)(x)), params


def adam_epochs(
  params,
  loss_fn: Callable,
  x,
  y,
  *,
  epochs: int,
  lr: float,
  batch_size: int,
  key: jax.Array,
  measure: Callable | None = None,
) -> Iterator[tuple[list[dict], float, tuple]]:
  """Yields (params, mean minibatch loss, measure(params) or ()) after each epoch of Adam on
  `loss_fn(params, x_batch, y_batch)`; minibatches reshuffled every epoch (the remainder dropped),
  each epoch one jitted scan."""
  n = len(x)
  batch_size = min(batch_size, n)
  steps = n // batch_size
  tx = optax.adam(lr)
  opt_state = tx.init(params)
  x, y = jnp.asarray(x), jnp.asarray(y)

  @jax.jit
  def epoch(params, opt_state, key, x, y):
    order = jax.random.permutation(key, n)[: steps * batch_size].reshape(steps, batch_size)

    def step(carry, idx):
      params, opt_state = carry
      loss, grads = jax.value_and_grad(loss_fn)(params, x[idx], y[idx])
      updates, opt_state = tx.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), loss

    (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), order)
    return params, opt_state, losses.mean(), (measure(params) if measure is not None else ())

  for e in range(epochs):
    params, opt_state, loss, measured = epoch(params, opt_state, jax.random.fold_in(key, e), x, y)
    yield params, float(loss), measured
