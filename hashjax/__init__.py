"""hashjax: learning to hash in JAX/Flax."""
