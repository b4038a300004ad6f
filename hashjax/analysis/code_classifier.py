"""Classifiers on frozen hash codes (the STL-10 study of CIMON's codes, reference/methods.md section 2).

    classify_workdir(workdir, epochs=..., hidden=..., lr=..., seed=..., classes_in_plot=...) -> metrics

Loads a training run's latest checkpoint from its workdir (`workdir_eval.load_run`: the hashing
network is not retrained), encodes a labelled training set and a test set to +-1 codes
(sign(0) = +1), and trains two classifiers on the frozen codes with Adam (optax), each a jitted
epoch of minibatch steps: an MLP (one hidden ReLU layer, `hidden` units) and a linear probe
(multinomial logistic regression) with the same data, optimizer, epochs and seed. Writes
`classify_metrics.json`, `classify_curves.png` (train loss and test accuracy per epoch of both)
and `codes_pca.png` (2-D PCA of the test codes of a few classes) into the workdir.

Which images (`classification_sets`): test = the protocol's query set; train = its labelled
database images that are not queries, or its labelled training images when every database image
is a query (test_vs_test). So 'full' (digits, Fashion-MNIST): the train split's codes vs the test
split's; 'unlabelled' (configs/cimon.py:stl10): STL-10's 5,000 labelled training images vs its
8,000 test images, the hashing network having trained on unlabelled images only.
"""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax

from hashjax.analysis import small_mlp
from hashjax.eval import evaluator
from hashjax.eval import plots
from hashjax.eval import workdir_eval
from hashjax.workdir import checkpoint

PCA_POINTS_PER_CLASS = 200


def classification_sets(protocol) -> tuple[np.ndarray, np.ndarray, str]:
  """(train indices, test indices, description) into the protocol's pool; see the module docstring."""
  labels = protocol.labels
  if labels.ndim != 1:
    raise ValueError('classify needs single-label data (one class id per image); this dataset is multi-label')
  test = protocol.query
  train, source = np.setdiff1d(protocol.database, test), 'database images that are not queries'
  if len(train) == 0:
    train, source = np.setdiff1d(protocol.train, test), 'training images that are not queries'
  train = train[labels[train] >= 0]  # unlabelled images (label -1) cannot train a classifier
  if len(train) == 0 or len(test) == 0:
    raise ValueError(f'protocol {protocol.name!r} leaves no labelled training image or no test image to classify')
  return train, test, f'train = the labelled {source} ({len(train)}), test = the query set ({len(test)})'


def fit(
  train_x: np.ndarray,
  train_y: np.ndarray,
  test_x: np.ndarray,
  test_y: np.ndarray,
  *,
  num_classes: int,
  hidden: int,
  epochs: int,
  lr: float,
  batch_size: int = 256,
  seed: int = 0,
) -> dict:
  """Trains one classifier with Adam; per-epoch curves and the final accuracies (floats, lists)."""
  if epochs < 1 or lr <= 0 or hidden < 0:
    raise ValueError(f'need epochs >= 1, lr > 0, hidden >= 0; got epochs={epochs}, lr={lr}, hidden={hidden}')
  key, init_key = jax.random.split(jax.random.key(seed))
  apply, params = small_mlp.init(init_key, train_x.shape[1], hidden, num_classes)
  test_x, test_y = jnp.asarray(test_x), jnp.asarray(test_y)

  def loss_fn(params, x, y):
    return optax.softmax_cross_entropy_with_integer_labels(apply(params, x), y).mean()

  def accuracy(params, x, y):
    return jnp.mean(jnp.argmax(apply(params, x), axis=-1) == y)

  curves = {'train_loss': [], 'train_accuracy': [], 'test_accuracy': []}
  measure = lambda params: (
    accuracy(params, jnp.asarray(train_x), jnp.asarray(train_y)),
    accuracy(params, test_x, test_y),
  )
  for params, loss, (train_acc, test_acc) in small_mlp.adam_epochs(
    params, loss_fn, train_x, train_y, epochs=epochs, lr=lr, batch_size=batch_size, key=key, measure=measure
  ):
    for name, value in zip(curves, (loss, train_acc, test_acc)):
      curves[name].append(round(float(value), 6))
  best = int(np.argmax(curves['test_accuracy']))
  return {
    'hidden': hidden,
    'test_accuracy': curves['test_accuracy'][-1],
    'train_accuracy': curves['train_accuracy'][-1],
    # the seed reports its best test epoch; selected on the test set, so optimistic
    'best_test_accuracy': curves['test_accuracy'][best],
    'best_epoch': best + 1,
    'curves': curves,
  }


def _check_checkpoint(workdir: str) -> None:
  workdir_eval.load_config(workdir)  # config.json first: "not a workdir" is the clearer message
  if checkpoint.latest_step(workdir) is None:
    raise checkpoint.CheckpointError(
      f'{workdir} has no checkpoint to classify with: train it first (python -m hashjax.main --config ... '
      f'--workdir {workdir}) or point --workdir at a trained run'
    )


def classify_workdir(
  workdir: str,
  *,
  epochs: int = 30,
  hidden: int = 512,
  lr: float = 1e-3,
  batch_size: int = 256,
  seed: int = 0,
  classes_in_plot: int = 3,
  step: int | None = None,
) -> dict:
  """Encodes with checkpoint `step` (default: the latest), trains the MLP and the linear probe,
  writes the metrics and figures; returns the metrics."""
  _check_checkpoint(workdir)
  config, run, params, step = workdir_eval.load_run(workdir, step)
  protocol = run.protocol
  train_idx, test_idx, sets = classification_sets(protocol)

  def codes(indices):  # +-1, sign(0) = +1 as everywhere in hashjax
    real = evaluator.encode_set(run.encode, params, protocol.images, indices, config.eval.batch_size, run.data_sharding)
    return np.where(real >= 0, 1.0, -1.0).astype(np.float32)

  train_x, test_x = codes(train_idx), codes(test_idx)
  train_y, test_y = protocol.labels[train_idx], protocol.labels[test_idx]
  num_classes = int(max(protocol.num_classes, train_y.max() + 1, test_y.max() + 1))
  args = dict(num_classes=num_classes, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)
  results = {
    'mlp': fit(train_x, train_y, test_x, test_y, hidden=hidden, **args),
    'linear': fit(train_x, train_y, test_x, test_y, hidden=0, **args),
  }

  bits = train_x.shape[1]
  title = f'{config.method} {bits} bits, {config.dataset.name} (step {step})'
  x = np.arange(1, epochs + 1)
  names = {'mlp': f'MLP ({hidden} hidden)', 'linear': 'linear probe'}
  files = [
    plots.line_panels(
      {
        'train loss': {names[k]: (x, r['curves']['train_loss']) for k, r in results.items()},
        'test accuracy': {names[k]: (x, r['curves']['test_accuracy']) for k, r in results.items()},
      },
      os.path.join(workdir, 'classify_curves.png'),
      title=f'classifiers on frozen codes: {title}',
      xlabel='epoch',
    )
  ]
  classes = np.unique(test_y)[:classes_in_plot]
  rng = np.random.default_rng(seed)
  shown = np.concatenate([rng.permutation(np.flatnonzero(test_y == c))[:PCA_POINTS_PER_CLASS] for c in classes])
  files.append(
    plots.pca_scatter(
      {f'test codes, <= {PCA_POINTS_PER_CLASS} per class': (test_x[shown], test_y[shown])},
      os.path.join(workdir, 'codes_pca.png'),
      title=f'PCA: {title}',
      legend=True,
    )
  )

  majority = float(np.mean(test_y == np.bincount(train_y).argmax()))
  out = {
    'step': step,
    'method': config.method,
    'dataset': config.dataset.name,
    'bits': bits,
    'sets': sets,
    'train_images': len(train_idx),
    'test_images': len(test_idx),
    'num_classes': num_classes,
    'chance': round(1 / num_classes, 6),
    'majority_class_accuracy': round(majority, 6),
    'epochs': epochs,
    'lr': lr,
    'batch_size': batch_size,
    'seed': seed,
    **results,
    'files': files,
  }
  with open(os.path.join(workdir, 'classify_metrics.json'), 'w') as f:
    json.dump(out, f, indent=2)
  return out
