"""Figures written into a workdir: the only module that uses matplotlib (headless Agg backend)."""

from __future__ import annotations

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position


def _save(fig, path: str) -> str:
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path


def pr_curve(precision, recall, path: str, title: str) -> str:
  """Precision against recall, one point per Hamming radius 0..bits (radius annotated every few)."""
  fig, ax = plt.subplots(figsize=(5, 4))
  ax.plot(recall, precision, marker='.', linewidth=1)
  step = max(1, len(recall) // 8)
  for r in range(0, len(recall), step):
    ax.annotate(f'r={r}', (recall[r], precision[r]), fontsize=7, textcoords='offset points', xytext=(3, 3))
  ax.set(xlabel='recall', ylabel='precision', xlim=(0, 1.02), ylim=(0, 1.02), title=title)
  ax.grid(alpha=0.3)
  return _save(fig, path)


def precision_at_n(ns, precisions, path: str, title: str) -> str:
  fig, ax = plt.subplots(figsize=(5, 4))
  ax.plot(ns, precisions, marker='.', linewidth=1)
  ax.set(xlabel='number of retrieved items N', ylabel='precision@N', ylim=(0, 1.02), title=title)
  ax.set_xscale('log')
  ax.grid(alpha=0.3)
  return _save(fig, path)
