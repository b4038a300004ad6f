"""The fast DSHNet computes the same function (and gradients) as its plain Flax definition."""

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hashjax.models import dsh_net


# The network as first written (plain Flax layers); dsh_net.DSHNet must match it.
def reference_lrn(x, size=3, alpha=5e-5, beta=0.75):
  sq = jax.lax.reduce_window(jnp.square(x), 0.0, jax.lax.add, (1, size, size, 1), (1, 1, 1, 1), 'SAME')
  return x / jnp.power(1.0 + (alpha / size**2) * sq, beta)


def reference_forward(model, x):
  x = x.astype(model.dtype)
  x = reference_lrn(nnx.relu(nnx.max_pool(model.conv1(x), (3, 3), (2, 2), 'SAME')))
  x = reference_lrn(nnx.avg_pool(nnx.relu(model.conv2(x)), (3, 3), (2, 2), 'SAME'))
  x = nnx.avg_pool(nnx.relu(model.conv3(x)), (3, 3), (2, 2), 'SAME')
  x = nnx.relu(model.fc1(x.reshape(x.shape[0], -1)))
  return model.fc2(x).astype(jnp.float32)


def _build(shape, dtype='float32'):
  """(graphdef, params) of a half-width net; params drawn with NumPy (eager init compiles slowly)."""
  model = nnx.eval_shape(lambda: dsh_net.DSHNet(12, shape, width=0.5, dtype=getattr(jnp, dtype), rngs=nnx.Rngs(0)))
  graphdef, abstract = nnx.split(model, nnx.Param)
  rng = np.random.default_rng(0)

  def draw(a):  # fan-in scaled, biases included so they matter
    fan_in = int(np.prod(a.shape[:-1])) if a.ndim > 1 else 1
    return jnp.asarray(rng.normal(size=a.shape) / np.sqrt(fan_in), a.dtype)

  return graphdef, jax.tree.map(draw, nnx.to_pure_dict(abstract))


def _outputs_and_grads(forward, graphdef, params, x):
  def loss(p):
    u = forward(nnx.merge(graphdef, p), x)
    return jnp.sum(jnp.tanh(u) * jnp.arange(u.shape[-1])), u

  (_, u), g = jax.value_and_grad(loss, has_aux=True)(params)
  return u, g


@pytest.mark.parametrize('shape', [(16, 16, 1), (15, 13, 3)])  # even / odd pooling paddings
def test_forward_and_grads_match_reference(shape):
  graphdef, params = _build(shape)
  x = jax.random.normal(jax.random.key(1), (4,) + shape) * 2.0
  fast, ref = jax.jit(
    lambda p: (
      _outputs_and_grads(lambda m, v: m(v), graphdef, p, x),
      _outputs_and_grads(reference_forward, graphdef, p, x),
    )
  )(params)
  # Float re-association only (separable sums, rsqrt for pow, im2col): relative 1e-4 of the scale.
  np.testing.assert_allclose(fast[0], ref[0], rtol=1e-4, atol=1e-5)
  for (path, g), r in zip(jax.tree_util.tree_leaves_with_path(fast[1]), jax.tree.leaves(ref[1])):
    scale = float(jnp.max(jnp.abs(r)))
    np.testing.assert_allclose(g / scale, r / scale, rtol=1e-4, atol=1e-5, err_msg=jax.tree_util.keystr(path))


def test_bfloat16_is_as_accurate_as_reference():
  # bf16 results differ elementwise between summation orders (the reference bf16 net's own conv1
  # gradients are 3-7% off float32, depending on params and XLA flags), so: the fast bf16 net is
  # about as close to the float32 reference as the reference bf16 net is (2x + 5% of the norm;
  # a wrong formula is off by O(100%)).
  shape = (12, 12, 1)
  graphdef, params = _build(shape, 'bfloat16')
  graphdef32, _ = _build(shape)
  x = jax.random.normal(jax.random.key(1), (6,) + shape) * 2.0
  fast, ref, exact = jax.jit(
    lambda p: (
      _outputs_and_grads(lambda m, v: m(v), graphdef, p, x),
      _outputs_and_grads(reference_forward, graphdef, p, x),
      _outputs_and_grads(reference_forward, graphdef32, p, x),
    )
  )(params)
  for (path, f), r, e in zip(jax.tree_util.tree_leaves_with_path(fast), jax.tree.leaves(ref), jax.tree.leaves(exact)):
    f, r, e = (np.asarray(t, np.float32) for t in (f, r, e))
    bound = 2 * np.linalg.norm(r - e) + 0.05 * np.linalg.norm(e)
    assert np.linalg.norm(f - e) <= bound, jax.tree_util.keystr(path)


def test_pools_and_lrn_match_flax():
  # Odd and even sizes (different SAME paddings), down to a single pixel; one compilation.
  xs = [jax.random.normal(jax.random.key(n), (2, n, n + 1, 3)) for n in (1, 2, 7, 8)]

  @jax.jit
  def both(x):
    # A large alpha so the normaliser differs from 1 noticeably.
    fast = (
      dsh_net.max_pool_3x3_s2(x),
      dsh_net.avg_pool_3x3_s2(x),
      dsh_net.lrn_within_channel(x, alpha=2.0),
      dsh_net.lrn_within_channel(x, alpha=2.0, beta=0.6, size=5),
    )
    ref = (
      nnx.max_pool(x, (3, 3), (2, 2), 'SAME'),
      nnx.avg_pool(x, (3, 3), (2, 2), 'SAME'),
      reference_lrn(x, alpha=2.0),
      reference_lrn(x, alpha=2.0, beta=0.6, size=5),
    )
    return fast, ref

  for fast, ref in jax.jit(lambda xs: [both(x) for x in xs])(xs):
    np.testing.assert_array_equal(fast[0], ref[0])
    for f, r in zip(fast[1:], ref[1:]):
      np.testing.assert_allclose(f, r, rtol=1e-5, atol=1e-6)
