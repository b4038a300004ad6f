"""Hamming distances between bit-packed codes (XOR + popcount in XLA)."""

import jax
import jax.numpy as jnp


def hamming_block(q_packed: jnp.ndarray, db_packed: jnp.ndarray) -> jnp.ndarray:
  """(nq, W) x (ndb, W) uint32 -> (nq, ndb) int32, traceable (no jit)."""
  x = jnp.bitwise_xor(q_packed[:, None, :], db_packed[None, :, :])
  # population_count on uint32: jnp.bitwise_count would count |x| for ints.
  return jnp.sum(jax.lax.population_count(x).astype(jnp.int32), axis=-1)


@jax.jit
def hamming_distances(q_packed, db_packed) -> jnp.ndarray:
  """Full (nq, ndb) int32 Hamming distance matrix of packed uint32 codes."""
  q_packed, db_packed = jnp.asarray(q_packed), jnp.asarray(db_packed)
  if q_packed.dtype != jnp.uint32 or db_packed.dtype != jnp.uint32:
    raise ValueError('packed codes must be uint32')
  if q_packed.shape[-1] != db_packed.shape[-1]:
    raise ValueError(f'word counts differ: {q_packed.shape[-1]} vs {db_packed.shape[-1]}')
  return hamming_block(q_packed, db_packed)
