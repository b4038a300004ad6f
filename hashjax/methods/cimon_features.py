"""Where CIMON's similarity graph gets its features (`loss.graph_features`).

The official code builds the graph from ImageNet-pretrained VGG16 fc7 features of the two views.
Without pretrained weights (offline, or small data) the network's own features are those of a
random network early on, so a fixed source can stand in:
  * 'network': the network's feature layer on each augmented view (official; stop-gradient);
  * 'pixels':  the un-augmented training image's pixels in [0, 1], average-pooled to at most
               32 x 32, flattened;
  * 'pca':     those pixels projected on their top `loss.graph_pca_dim` principal components
               (fitted once on the training images); on the `features` dataset, the feature
               vectors projected on theirs;
  * 'features': the `features` dataset's vectors as stored (e.g. DINOv2 embeddings), the input of
               the MLP. This is the official route's analogue: there the graph comes from a frozen
               ImageNet network's features, here from the frozen foundation model's, except that
               the official code takes them on each augmented view and this on the stored,
               un-augmented vector. Only for the features dataset, and 'pixels' only for images.
A fixed source gives one graph per image, used for both views (the augmentations would move
pixels, not meaning). The choice is printed at the start of the run and written into
final_metrics.json ('graph_features'), never implied.
"""

from __future__ import annotations

import numpy as np

from hashjax.baselines import _common
from hashjax.data import feature_rows

SOURCES = ('network', 'pixels', 'pca', 'features')
_MAX_SIDE = 32  # larger images are average-pooled first: the covariance stays <= 3072 x 3072


def check(loss_config, is_features: bool | None = None) -> str:
  """The source's name, after checking it (and, when `is_features` is given, that it fits the data:
  'pixels' needs images, 'features' feature vectors)."""
  source = loss_config.graph_features
  if source not in SOURCES:
    raise ValueError(f'unknown loss.graph_features {source!r}; valid: {", ".join(SOURCES)}')
  if is_features is True and source == 'pixels':
    raise ValueError(
      "loss.graph_features='pixels' reads images; on the features dataset use 'features' (the stored vectors), "
      "'pca' or 'network'"
    )
  if is_features is False and source == 'features':
    raise ValueError(
      "loss.graph_features='features' is for the features dataset (dataset.name=features); on images use "
      "'pixels', 'pca' or 'network'"
    )
  if source == 'pca' and loss_config.graph_pca_dim < 2:
    raise ValueError(f'loss.graph_pca_dim must be >= 2 with graph_features=pca; got {loss_config.graph_pca_dim}')
  return source


def describe(loss_config, pretrained: str = '') -> str:
  """One line naming the graph's feature source, for the run log and final_metrics.json;
  `pretrained` is the network's weights directory ('' when initialised at random: models.pretrained_dir)."""
  source = check(loss_config)
  if source == 'network':
    weights = f'pretrained weights {pretrained}' if pretrained else 'randomly initialised, no pretrained weights'
    return f'network (its feature layer on each augmented view, as the official code; {weights})'
  if source == 'pixels':
    return f'pixels (un-augmented training images, pooled to <= {_MAX_SIDE}x{_MAX_SIDE}; no pretrained features)'
  if source == 'features':
    return "features (the features dataset's stored vectors, un-augmented)"
  return (
    f'pca ({loss_config.graph_pca_dim} principal components of the un-augmented training pixels, or of the '
    'feature vectors on the features dataset; no pretrained network)'
  )


def pixels(images: np.ndarray) -> np.ndarray:
  """(N, H, W, C) uint8 -> (N, D) float32 in [0, 1], average-pooled by the smallest integer factor
  that brings both sides to <= 32 (trailing rows / columns that do not fill a window are dropped)."""
  n, h, w, c = images.shape
  f = -(-max(h, w) // _MAX_SIDE)
  x = images[:, : h // f * f, : w // f * f].astype(np.float32) / 255.0
  if f > 1:
    x = x.reshape(n, h // f, f, w // f, f, c).mean(axis=(2, 4))
  return x.reshape(n, -1)


def rows(images: np.ndarray, indices: np.ndarray) -> np.ndarray:
  """(len(indices), D) float32: pooled pixels of images (`pixels`), or feature vectors as stored."""
  if feature_rows.is_features(images):  # the features dataset (a memory-mapped FeatureRows)
    return np.asarray(images[indices], np.float32)
  return pixels(images[indices])


def fixed_features(loss_config, images: np.ndarray, indices: np.ndarray) -> np.ndarray | None:
  """(len(indices), D) float32 graph features of images[indices] in that order; None for 'network'."""
  source = check(loss_config, is_features=feature_rows.is_features(images))
  if source == 'network':
    return None
  x = rows(images, indices)
  if source in ('pixels', 'features'):
    return x
  mean, components, _ = _common.pca(x, min(loss_config.graph_pca_dim, x.shape[1]))
  return ((x - mean) @ components).astype(np.float32)
