"""DPSH: Deep Pairwise-Supervised Hashing (Li, Wang, Kang, IJCAI 2016), in-batch pairs.

The paper's relaxed objective (b replaced by u inside Theta), Theta_ij = u_i^T u_j / 2 and
b_i = sign(u_i):

  L = - sum_{s_ij in S} (s_ij Theta_ij - log(1 + e^{Theta_ij})) + eta * sum_i ||b_i - u_i||^2

Here S is every unordered pair i < j of the mini-batch (s_ij = 1 iff the images share a label,
`dsh.similarity`). Divided by its N(N-1)/2 pairs, the paper's objective over N training images is
mean_pairs + (2 eta / (N - 1)) mean_i ||b_i - u_i||^2, and its mini-batch estimate is

  L = mean_{i<j} [softplus(Theta_ij) - s_ij Theta_ij] + quant_weight * mean_i ||b_i - u_i||^2

with quant_weight = 2 eta / (N - 1): each image sits in N - 1 pairs of the training set, only
B - 1 of the batch, so eta must not weigh the quantisation against B - 1 pairs. Default 0.02 =
eta 50 (the DPSH PyTorch ports' default, TreezzZ/DPSH_PyTorch `--eta`) on the 5,000 training
images of DPSH's CIFAR-10 protocol. DHP's eta = 0.1 multiplies a mean over the B x K entries of
(b - u)^2: quant_weight = 0.1 / K here. (Weighing eta = 50 against the batch's B - 1 pairs pins
every u to one common sign(u), even for free vectors instead of a network.)
softplus(x) = max(x, 0) + log1p(e^{-|x|}) is stable for any Theta. b = sign(u) is a constant
target (zero gradient through sign), as in the paper's alternating update of B.

Known limitation (digits :quick, DSH network from scratch; Adam lr 1e-4...3e-3, SGD, no weight
decay, quant_weight 0...1.6 all tried): training collapses to one code for every image (mAP 0.10).
At initialisation this network's outputs share a common component ~4x their per-image variation;
the likely cause is that the dissimilar pairs (90%) shrink u towards the saddle u = 0 of the
likelihood (through the shared last layer) before the similar pairs grow the class structure.
Free vectors u from the same start escape in 300 Adam steps, and starting from a trained network
(`--config.init_from` a HashNet :quick run, mAP 0.68) DPSH holds mAP 0.59; DPSH's published runs
fine-tune an ImageNet backbone, whose outputs vary per image from the start.

Why in-batch: DHP (and the official DPSH-pytorch) compare each batch item against a memory bank
of the outputs of all training images, updated as batches pass; that is trainer state. This loss
is pure (params, batch, rng) -> (loss, metrics), so its pairs are the batch's own.
DHP's other settings: RMSprop lr 1e-5, batch 128 (fine-tuning ImageNet AlexNet).
Codes at test time are sign(u).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from hashjax.methods import dsh


def pair_loss(u: jax.Array, labels: jax.Array, *, quant_weight: float):
  """DPSH loss of outputs u (B, K) with labels; returns (loss, metrics)."""
  u = u.astype(jnp.float32)
  n = u.shape[0]
  theta = 0.5 * (u @ u.T)
  similar = dsh.similarity(labels).astype(jnp.float32)
  per_pair = jax.nn.softplus(theta) - similar * theta
  upper = jnp.triu(jnp.ones((n, n), bool), k=1)
  num_pairs = n * (n - 1) / 2
  likelihood = jnp.sum(jnp.where(upper, per_pair, 0.0)) / num_pairs
  quant = quant_weight * jnp.sum((jax.lax.stop_gradient(jnp.sign(u)) - u) ** 2) / n
  metrics = {
    'pair_loss': likelihood,
    'quant_loss': quant,
    'similar_fraction': jnp.sum(jnp.where(upper, similar, 0.0)) / num_pairs,
  }
  return likelihood + quant, metrics


def validate(ctx) -> None:
  if ctx.loss.quant_weight < 0:
    raise ValueError(f'loss.quant_weight must be >= 0, got {ctx.loss.quant_weight}')


def loss_fn(params, batch, rng, *, forward, config):
  """Pure DPSH objective over the in-batch pairs: (params, batch, rng) -> (loss, metrics)."""
  u = forward(params, batch['image'], train=True, rng=rng)
  return pair_loss(u, batch['label'], quant_weight=config.quant_weight)
