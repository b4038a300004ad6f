"""DLBHC: Deep Learning of Binary Hash Codes (Lin, Yang, Hsiao, Chen, CVPRW 2015).

No hashing loss: a latent layer H of `bits` sigmoid units sits between the backbone features and
the softmax classifier (models/dlbhc.py), and the network is trained for classification,

  L = -(1/B) sum_i log softmax(logits_i)[y_i]

(Caffe's SoftmaxWithLoss, mean over the batch). The classifier has to read the class from H
alone, so similar images get similar activations of H. Codes: bit = (H >= 0.5) (the authors'
`demo.m`: `binary_codes = (feat > 0.5)` differs only at exactly 0.5). Retrieval can re-rank the
Hamming candidates by the features the latent layer reads (hashjax/retrieval/coarse_to_fine.py).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def to_codes(outputs: dict) -> jax.Array:
  """H - 0.5: its sign (>= 0 -> 1) is the bit H >= 0.5; exact in float32 (Sterbenz: H in [0.25, 1])."""
  return outputs['latent'] - 0.5


def classification_loss(logits: jax.Array, labels: jax.Array, latent: jax.Array):
  """Mean softmax cross-entropy of (B, C) logits against class ids (B,); returns (loss, metrics)."""
  if labels.ndim != 1:
    raise ValueError(f'DLBHC trains a softmax classifier and needs class-id labels (B,), got shape {labels.shape}')
  log_probs = jax.nn.log_softmax(logits.astype(jnp.float32))
  ce = -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None].astype(jnp.int32), axis=1))
  metrics = {
    'cross_entropy': ce,
    'accuracy': jnp.mean(jnp.argmax(logits, axis=1) == labels),
    # How binary the latent layer is: mean distance of H from the 0.5 threshold (0.5 = saturated).
    'latent_margin': jnp.mean(jnp.abs(latent - 0.5)),
    'bits_on': jnp.mean(latent >= 0.5),
  }
  return ce, metrics


def loss_fn(params, batch, rng, *, forward, config):
  """Pure DLBHC objective: (params, batch, rng) -> (loss, metrics)."""
  del config  # no hyperparameters: the model holds the latent layer and the classifier
  out = forward(params, batch['image'], train=True, rng=rng)
  return classification_loss(out['logits'], batch['label'], out['latent'])
