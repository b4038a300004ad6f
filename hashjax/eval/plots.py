"""Figures written into a workdir: the only module that uses matplotlib (headless Agg backend)."""

from __future__ import annotations

import matplotlib
import numpy as np

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position


def _save(fig, path: str | None):
  """Writes the figure to `path` and returns the path; path None returns it as an RGB uint8 array
  (H, W, 3) instead (TensorBoard images, hashjax/train/metric_writer.py)."""
  if fig.get_layout_engine() is None:
    fig.tight_layout()
  if path is None:
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return image
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path


def pr_curve(precision, recall, path: str | None, title: str):
  """Precision against recall, one point per Hamming radius 0..bits (radius annotated every few);
  path None: the RGB array (see `_save`)."""
  fig, ax = plt.subplots(figsize=(5, 4))
  ax.plot(recall, precision, marker='.', linewidth=1)
  step = max(1, len(recall) // 8)
  for r in range(0, len(recall), step):
    ax.annotate(f'r={r}', (recall[r], precision[r]), fontsize=7, textcoords='offset points', xytext=(3, 3))
  ax.set(xlabel='recall', ylabel='precision', xlim=(0, 1.02), ylim=(0, 1.02), title=title)
  ax.grid(alpha=0.3)
  return _save(fig, path)


def precision_at_n(ns, precisions, path: str, title: str) -> str:
  return lines(
    {'P@N': (ns, precisions)},
    path,
    title=title,
    xlabel='number of retrieved items N',
    ylabel='precision@N',
    xscale='log',
    ylim=(0, 1.02),
  )


def retrieval_grid(query_images, retrieved_images, distances, relevant, path: str, title: str) -> str:
  """One row per query: the query image, then its retrieved images ranked by Hamming distance.

  query_images (Q, H, W, C) and retrieved_images (Q, K, H, W, C) are uint8; distances (Q, K) are
  written above each retrieved image (-1: a blank cell, nothing retrieved there); relevant (Q, K)
  bool (or None) frames it green (shares the query's label) or red.
  """
  num_queries, k = retrieved_images.shape[:2]
  grey = query_images.shape[-1] == 1
  show = lambda ax, image: ax.imshow(image[..., 0] if grey else image, cmap='gray' if grey else None, vmin=0, vmax=255)
  fig, axes = plt.subplots(num_queries, k + 1, figsize=(1.1 * (k + 1), 1.2 * num_queries + 0.4), squeeze=False)
  for row in range(num_queries):
    show(axes[row, 0], query_images[row])
    axes[row, 0].set_title('query', fontsize=7)
    for col in range(k):
      ax = axes[row, col + 1]
      if distances[row, col] < 0:
        ax.axis('off')
        continue
      show(ax, retrieved_images[row, col])
      ax.set_title(f'd={int(distances[row, col])}', fontsize=7)
      if relevant is not None:
        for spine in ax.spines.values():
          spine.set(color='tab:green' if relevant[row, col] else 'tab:red', linewidth=2)
  for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
  fig.suptitle(title, fontsize=9)
  return _save(fig, path)


def lines(
  series: dict,
  path: str,
  *,
  title: str,
  xlabel: str,
  ylabel: str,
  xscale: str = 'linear',
  ylim=None,
  errors: dict | None = None,
) -> str:
  """One line per entry of `series` {label: (x, y)}, with optional error bars {label: yerr}."""
  fig, ax = plt.subplots(figsize=(6, 4.2))
  for label, (x, y) in series.items():
    if errors and label in errors:
      ax.errorbar(x, y, yerr=errors[label], marker='o', markersize=3, linewidth=1, capsize=3, label=label)
    else:
      ax.plot(x, y, marker='.', linewidth=1, label=label)
  ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
  ax.set_xscale(xscale)
  if ylim is not None:
    ax.set_ylim(*ylim)
  ax.grid(alpha=0.3)
  if len(series) > 1 or errors:
    ax.legend(fontsize=7)
  return _save(fig, path)


def scatter_panels(panels: dict, path: str, *, title: str, axis_names=('PC 1', 'PC 2'), legend: bool = False) -> str:
  """One scatter panel per entry {panel title: (xy (n, 2), labels (n,))}, coloured by label: a
  colour bar, or with `legend` one legend entry per class (for a few classes)."""
  fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels) + 1, 4), squeeze=False, layout='constrained')
  for ax, (name, (xy, labels)) in zip(axes[0], panels.items()):
    if legend:
      for i, c in enumerate(np.unique(labels)):
        ax.scatter(
          xy[labels == c, 0], xy[labels == c, 1], color=plt.cm.tab10(i % 10), s=6, alpha=0.7, label=f'class {c}'
        )
      ax.legend(fontsize=7, markerscale=2)
    else:
      points = ax.scatter(xy[:, 0], xy[:, 1], c=labels, cmap='tab10', s=4, alpha=0.7)
    ax.set(title=name, xlabel=axis_names[0], ylabel=axis_names[1])
  if not legend:
    fig.colorbar(points, ax=axes[0].tolist(), label='class')
  fig.suptitle(title, fontsize=10)
  return _save(fig, path)


def label_histogram(counts: dict, path: str, *, title: str, query_label: int | None = None) -> str:
  """Grouped bars of how many retrieved items have each label, one group per class and one bar per
  ranking {name: counts (C,)} (e.g. Hamming and coarse-to-fine); the query's class is marked."""
  fig, ax = plt.subplots(figsize=(6.5, 4))
  num_classes = len(next(iter(counts.values())))
  width = 0.8 / len(counts)
  for i, (name, values) in enumerate(counts.items()):
    ax.bar([c + (i - (len(counts) - 1) / 2) * width for c in range(num_classes)], values, width, label=name)
  if query_label is not None:
    ax.axvspan(query_label - 0.45, query_label + 0.45, color='tab:green', alpha=0.12, label='query label')
  ax.set(xlabel='label', ylabel='retrieved items', title=title, xticks=range(num_classes))
  ax.legend(fontsize=7)
  return _save(fig, path)


def line_panels(panels: dict, path: str, *, title: str, xlabel: str) -> str:
  """Side-by-side line plots, one per entry {panel title (its y label): {label: (x, y)}}."""
  fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.8), squeeze=False)
  for ax, (name, series) in zip(axes[0], panels.items()):
    for label, (x, y) in series.items():
      ax.plot(x, y, marker='.', linewidth=1, label=label)
    ax.set(title=name, xlabel=xlabel, ylabel=name)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  fig.suptitle(title, fontsize=10)
  return _save(fig, path)


def pca_2d(points) -> np.ndarray:
  """(n, 2) projection of the rows of `points` on their first two principal components."""
  from sklearn.decomposition import PCA  # pylint: disable=g-import-not-at-top  (a second to import)

  with np.errstate(invalid='ignore', divide='ignore'):  # identical points: a zero variance ratio, not an error
    return PCA(n_components=2).fit_transform(np.asarray(points, np.float64))


def pca_scatter(panels: dict, path: str, *, title: str, legend: bool = False) -> str:
  """`scatter_panels` of each entry {panel title: (points (n, d), labels (n,))} projected by `pca_2d`."""
  return scatter_panels(
    {name: (pca_2d(points), labels) for name, (points, labels) in panels.items()}, path, title=title, legend=legend
  )
