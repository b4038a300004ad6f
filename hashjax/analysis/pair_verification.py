"""Similar / dissimilar pairs from the codes alone: a small classifier on |b1 - b2| (`python -m hashjax.pair_verification`'s library)."""

from __future__ import annotations

import functools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn import metrics as sk_metrics

from hashjax.analysis import small_mlp

NUM_PAIRS = 200_000
NUM_TEST_PAIRS = 100_000


def to_pm1(codes: np.ndarray) -> np.ndarray:
  """Real-valued or +-1 codes -> +-1 float32 (sign(0) = +1)."""
  return np.where(np.asarray(codes) >= 0, 1.0, -1.0).astype(np.float32)


def similar(labels: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
  """(P,) bool: pair (i, j) shares a class (class ids) or at least one label (multi-hot)."""
  if labels.ndim == 1:
    return labels[i] == labels[j]
  return np.einsum('pl,pl->p', labels[i].astype(np.float32), labels[j].astype(np.float32)) > 0


def sample_pairs(
  labels: np.ndarray, num_pairs: int, rng: np.random.Generator, balanced: bool = False
) -> tuple[np.ndarray, np.ndarray]:
  """`num_pairs` random pairs (i, j), i != j, of range(len(labels)); `balanced`: half of them similar."""
  n = len(labels)
  if n < 2 or num_pairs < 1:
    raise ValueError(f'need >= 2 images and >= 1 pair, got {n} images, {num_pairs} pairs')

  def draw(count):
    i = rng.integers(0, n, count)
    return i, (i + 1 + rng.integers(0, n - 1, count)) % n

  if not balanced:
    return draw(num_pairs)
  want_similar = num_pairs // 2
  parts = {True: [], False: []}
  for _ in range(1000):
    i, j = draw(max(num_pairs, 10_000))
    sim = similar(labels, i, j)
    for key in parts:
      parts[key].append(np.stack([i[sim == key], j[sim == key]]))
    counts = {key: sum(part.shape[1] for part in parts[key]) for key in parts}
    if counts[True] >= want_similar and counts[False] >= num_pairs - want_similar:
      break
  else:
    raise ValueError('balanced pairs: too few similar (or dissimilar) pairs in this set')
  pairs = np.concatenate(
    [np.concatenate(parts[True], 1)[:, :want_similar], np.concatenate(parts[False], 1)[:, : num_pairs - want_similar]],
    1,
  )
  i, j = pairs
  order = rng.permutation(len(i))
  return i[order], j[order]


def pair_features(codes: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
  """|b_i - b_j| / 2 in {0, 1}, (P, K) float32: where the two +-1 codes differ."""
  return (np.abs(codes[i] - codes[j]) / 2).astype(np.float32)


def fit_classifier(
  x: np.ndarray,
  y: np.ndarray,
  *,
  hidden: int = 64,
  epochs: int = 20,
  lr: float = 1e-3,
  batch_size: int = 200,
  seed: int = 0,
):
  """Adam on the mean binary cross-entropy, minibatches reshuffled every epoch; (logits(x) of the
  fitted classifier, epoch losses)."""
  if epochs < 1 or lr <= 0 or hidden < 0 or batch_size < 1:
    raise ValueError(
      f'need epochs >= 1, lr > 0, hidden >= 0, batch_size >= 1; got {epochs}, {lr}, {hidden}, {batch_size}'
    )
  key, init_key = jax.random.split(jax.random.key(seed))
  apply, params = small_mlp.init(init_key, x.shape[1], hidden, 1)
  logits_of = lambda params, x: apply(params, x)[:, 0]

  def loss_fn(params, xb, yb):
    return optax.sigmoid_binary_cross_entropy(logits_of(params, xb), yb).mean()

  losses = []
  for params, loss, _ in small_mlp.adam_epochs(
    params,
    loss_fn,
    np.asarray(x, np.float32),
    np.asarray(y, np.float32),
    epochs=epochs,
    lr=lr,
    batch_size=batch_size,
    key=key,
  ):
    losses.append(round(loss, 6))
  return functools.partial(logits_of, params), losses


def verification_metrics(y_true: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
  """Precision, recall, F1, accuracy (score >= threshold predicts similar) and average precision."""
  y_true = np.asarray(y_true, bool)
  pred = np.asarray(scores) >= threshold
  tp = float(np.sum(pred & y_true))
  precision = tp / max(float(pred.sum()), 1.0)
  recall = tp / max(float(y_true.sum()), 1.0)
  f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
  ap = float(sk_metrics.average_precision_score(y_true, scores)) if y_true.any() else float('nan')
  return {
    'precision': round(precision, 6),
    'recall': round(recall, 6),
    'f1': round(f1, 6),
    'accuracy': round(float(np.mean(pred == y_true)), 6),
    'average_precision': round(ap, 6),
  }


def verify(
  train_codes,
  train_labels,
  test_codes,
  test_labels,
  *,
  num_pairs: int = NUM_PAIRS,
  num_test_pairs: int = NUM_TEST_PAIRS,
  hidden: int = 64,
  epochs: int = 20,
  lr: float = 1e-3,
  batch_size: int = 200,
  balanced: bool = False,
  seed: int = 0,
) -> dict:
  """Fits the pair classifier on random pairs of the train codes, scores random test pairs; metrics."""
  train_codes, test_codes = to_pm1(train_codes), to_pm1(test_codes)
  train_labels, test_labels = np.asarray(train_labels), np.asarray(test_labels)
  if train_codes.shape[1] != test_codes.shape[1]:
    raise ValueError(f'train codes have {train_codes.shape[1]} bits, test codes {test_codes.shape[1]}')
  if len(train_codes) != len(train_labels) or len(test_codes) != len(test_labels):
    raise ValueError('each code set needs one label row per code')
  rng = np.random.default_rng(seed)
  i, j = sample_pairs(train_labels, num_pairs, rng, balanced)
  ti, tj = sample_pairs(test_labels, num_test_pairs, rng, balanced)
  x, y = pair_features(train_codes, i, j), similar(train_labels, i, j)
  tx, ty = pair_features(test_codes, ti, tj), similar(test_labels, ti, tj)
  logits_of, losses = fit_classifier(x, y, hidden=hidden, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)
  probs = np.asarray(jax.nn.sigmoid(logits_of(jnp.asarray(tx))))
  bits = train_codes.shape[1]
  hamming = tx.sum(1)
  return {
    'bits': bits,
    'train_pairs': len(i),
    'test_pairs': len(ti),
    'balanced': balanced,
    'train_similar_fraction': round(float(y.mean()), 6),
    'test_similar_fraction': round(float(ty.mean()), 6),
    'classifier': {
      'hidden': hidden,
      'epochs': epochs,
      'lr': lr,
      'batch_size': batch_size,
      'seed': seed,
      'train_loss': losses,
      **verification_metrics(ty, probs, 0.5),
    },
    'hamming_average_precision': round(float(sk_metrics.average_precision_score(ty, -hamming)), 6)
    if ty.any()
    else float('nan'),
  }


def fit_and_test_sets(protocol) -> tuple[np.ndarray, np.ndarray, str]:
  """(fit indices, test indices, description) into the protocol's pool; see the module docstring."""
  test = protocol.query
  fit, source = np.setdiff1d(protocol.database, test), 'database images that are not queries'
  if len(fit) < 2:
    fit, source = np.setdiff1d(protocol.train, test), 'training images that are not queries'
  if len(fit) < 2 or len(test) < 2:
    raise ValueError(f'protocol {protocol.name!r} leaves fewer than 2 fit or test images for pairs')
  return fit, test, f'fit = {source} ({len(fit)}), test = the query set ({len(test)})'


def verify_workdir(workdir: str, step: int | None = None, **kwargs) -> dict:
  """Encodes the workdir's fit and test sets with its checkpoint `step` (default: the latest), runs
  `verify`, writes the json."""
  from hashjax.eval import evaluator  # pylint: disable=g-import-not-at-top
  from hashjax.eval import workdir_eval  # pylint: disable=g-import-not-at-top  (the trainer's imports)

  config, run, params, step = workdir_eval.load_run(workdir, step)
  protocol = run.protocol
  fit, test, sets = fit_and_test_sets(protocol)
  encode = lambda idx: evaluator.encode_set(
    run.encode, params, protocol.images, idx, config.eval.batch_size, run.data_sharding
  )
  out = verify(encode(fit), protocol.labels[fit], encode(test), protocol.labels[test], **kwargs)
  out = {'step': step, 'method': config.method, 'dataset': config.dataset.name, 'sets': sets, **out}
  with open(os.path.join(workdir, 'pair_verification.json'), 'w') as f:
    json.dump(out, f, indent=2)
  return out


def load_codes(path: str, what: str, bits: int | None) -> np.ndarray:
  from hashjax.retrieval import code_files  # pylint: disable=g-import-not-at-top
  from hashjax.retrieval import codes as codes_lib  # pylint: disable=g-import-not-at-top

  packed, bits = code_files.packed_codes(code_files.load_npy(path, what), what, bits)
  return codes_lib.unpack_codes(packed, bits)


def load_labels(path: str, what: str) -> np.ndarray:
  from hashjax.retrieval import code_files  # pylint: disable=g-import-not-at-top

  return code_files.load_npy(path, what)
