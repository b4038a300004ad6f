"""CSQ: Central Similarity Quantization (Yuan, Wang, Wang, Yang, Tay, Feng, CVPR 2020).

Each class gets a fixed hash center c in {-1, +1}^K, far from the other centers; the network's
relaxed code u = tanh(z) is pulled to its image's center by a per-bit binary cross-entropy on
(u + 1)/2 against (c + 1)/2, plus a quantisation term (the paper's central similarity +
quantisation objective, as the official code and DHP's `CSQ.py` compute it):

  L = mean_{i,k} BCE((u_ik + 1)/2, (c_ik + 1)/2) + lambda * mean_{i,k} (|u_ik| - 1)^2

both means over the B x K entries (PyTorch's BCELoss / `.mean()`), lambda = 1e-4 (DHP; the official
script's --lambda is swept 1e-4...0.05). Since (tanh(z) + 1)/2 = sigmoid(2 z), the BCE is computed
stably from the logits as softplus(2 z) - t * 2 z (PyTorch clamps log at -100 instead).

Centers (`hash_centers`), a function of (bits, the dataset's class count, seed) only, built with
NumPy once (`init_state`) and kept in the method state (constant; never trained):
  * bits a power of 2 and num_classes <= 2 * bits: the first num_classes rows of [H; -H], H the
    K x K Sylvester-Hadamard matrix. Distinct rows of H (or of -H) are exactly K/2 apart; row i of
    H and row i of -H are K apart (the paper's Hadamard construction).
  * otherwise (e.g. 12, 24 or 48 bits, or more classes than 2K): random balanced centers, each
    with exactly floor(K/2) bits at +1 (DHP samples K/2 positions per center; the official code
    draws Bernoulli(0.5) bits, balanced only in expectation). The paper asks for a mean pairwise
    Hamming distance >= K/2; DHP also asks for a minimum > K/4. We draw up to `MAX_CENTER_DRAWS`
    seeded candidate sets and keep the first with mean >= K/2 and minimum >= `min_center_distance`
    (K/4 rounded up); if none qualifies (many classes for few bits) the set with the largest
    minimum (then largest mean). Deterministic in the seed.
Multi-label (DHP / official): an image's center is sign(sum of its labels' centers); a bit whose
sum is 0 takes the bit of one fixed random +-1 vector (seeded), as DHP's `multi_label_random_center`.
Codes at test time are sign(u) = sign(z).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

MAX_CENTER_DRAWS = 100


def is_power_of_two(n: int) -> bool:
  return n > 0 and n & (n - 1) == 0


def min_center_distance(bits: int) -> int:
  """The minimum pairwise Hamming distance the random centers aim for: ceil(K/4) (DHP's bound)."""
  return -(-bits // 4)


def pairwise_hamming(centers: np.ndarray) -> np.ndarray:
  """Hamming distances between distinct +-1 centers (the upper triangle, flattened)."""
  bits = centers.shape[1]
  dist = (bits - centers @ centers.T) / 2
  return dist[np.triu_indices(len(centers), k=1)]


def random_balanced_centers(bits: int, num_classes: int, seed: int) -> np.ndarray:
  """Seeded balanced +-1 centers: the first of MAX_CENTER_DRAWS draws meeting the distance goals."""
  rng = np.random.default_rng(seed)
  best, best_key = None, None
  for _ in range(MAX_CENTER_DRAWS):
    centers = -np.ones((num_classes, bits))
    for row in centers:
      row[rng.permutation(bits)[: bits // 2]] = 1.0
    dist = pairwise_hamming(centers) if num_classes > 1 else np.array([bits], float)
    if dist.mean() >= bits / 2 and dist.min() >= min_center_distance(bits):
      return centers
    key = (dist.min(), dist.mean())
    if best_key is None or key > best_key:
      best, best_key = centers, key
  return best


def hash_centers(bits: int, num_classes: int, seed: int = 0) -> np.ndarray:
  """(num_classes, bits) float +-1 centers: Hadamard rows when possible, else random balanced."""
  if bits <= 0 or num_classes <= 0:
    raise ValueError(f'bits and num_classes must be positive, got bits={bits}, num_classes={num_classes}')
  if is_power_of_two(bits) and num_classes <= 2 * bits:
    hadamard = scipy.linalg.hadamard(bits).astype(np.float64)
    return np.concatenate([hadamard, -hadamard])[:num_classes]
  return random_balanced_centers(bits, num_classes, seed)


def tie_breaker(bits: int, seed: int) -> np.ndarray:
  """The fixed random +-1 vector that decides zero-sum bits of multi-label centers."""
  return np.random.default_rng([seed, 1]).choice([-1.0, 1.0], size=bits)


def label_centers(labels: jax.Array, centers: jax.Array, tie: jax.Array) -> jax.Array:
  """(B, K) target center per image: its class's center, or sign(sum) of its labels' centers."""
  centers = jnp.asarray(centers, jnp.float32)
  if labels.ndim == 1:
    return centers[labels]
  total = labels.astype(jnp.float32) @ centers
  return jnp.where(total == 0, jnp.asarray(tie, jnp.float32), jnp.sign(total))


def center_loss(logits: jax.Array, targets: jax.Array, *, quant_weight: float):
  """CSQ loss of network outputs z (B, K) against +-1 targets (B, K); returns (loss, metrics)."""
  logits = logits.astype(jnp.float32)
  t = (targets + 1.0) / 2.0
  # BCE(sigmoid(2z), t) = softplus(2z) - t * 2z: (tanh(z) + 1)/2 = sigmoid(2z).
  bce = jnp.mean(jax.nn.softplus(2.0 * logits) - t * 2.0 * logits)
  u = jnp.tanh(logits)
  quant = quant_weight * jnp.mean((jnp.abs(u) - 1.0) ** 2)
  metrics = {'center_loss': bce, 'quant_loss': quant, 'bit_agreement': jnp.mean(jnp.sign(logits) == targets)}
  return bce + quant, metrics


def validate(ctx) -> None:
  if ctx.loss.quant_weight < 0:
    raise ValueError(f'loss.quant_weight must be >= 0, got {ctx.loss.quant_weight}')


def init_state(ctx, key: jax.Array) -> dict:
  """The fixed centers of the dataset's classes and the multi-label tie bits."""
  del key  # seeded by loss.center_seed, so the centers do not depend on the run's seed
  return {
    'centers': jnp.asarray(hash_centers(ctx.bits, ctx.num_classes, ctx.loss.center_seed), jnp.float32),
    'tie': jnp.asarray(tie_breaker(ctx.bits, ctx.loss.center_seed), jnp.float32),
  }


def loss_fn(params, batch, rng, *, forward, config):
  """Pure CSQ objective: (params, batch, rng) -> (loss, metrics). Centers: batch['method_state']."""
  logits = forward(params, batch['image'], train=True, rng=rng)
  state = batch['method_state']
  targets = label_centers(batch['label'], state['centers'], state['tie'])
  return center_loss(logits, targets, quant_weight=config.quant_weight)
