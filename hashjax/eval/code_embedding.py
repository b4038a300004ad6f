"""A 2-D t-SNE of hash codes and the within/between-class distance ratio d_w/d_b in its title
(the IDCWH paper's figure: compact classes far apart give a small ratio).

  d_w = mean Hamming distance over pairs of codes of the same class (multi-label: sharing a label),
  d_b = mean Hamming distance over the other pairs, both over a seeded sample of the codes.
"""

from __future__ import annotations

import numpy as np
from sklearn import manifold

from hashjax.eval import plots


def _signs(codes: np.ndarray) -> np.ndarray:
  return np.where(np.asarray(codes) >= 0, 1.0, -1.0)  # sign(0) = +1, as the packer


def class_distance_ratio(codes: np.ndarray, labels: np.ndarray) -> dict:
  """{'d_w', 'd_b', 'd_w/d_b'} of real-valued codes (sign taken) with class ids or multi-hot labels."""
  b = _signs(codes)
  dist = (b.shape[1] - b @ b.T) / 2.0
  labels = np.asarray(labels)
  same = (labels[:, None] == labels[None, :]) if labels.ndim == 1 else (labels @ labels.T > 0)
  off_diagonal = ~np.eye(len(b), dtype=bool)
  within, between = same & off_diagonal, ~same
  if not within.any() or not between.any():
    raise ValueError('d_w/d_b needs at least two codes of one class and two classes')
  d_w, d_b = float(dist[within].mean()), float(dist[between].mean())
  return {'d_w': d_w, 'd_b': d_b, 'd_w/d_b': d_w / d_b if d_b > 0 else None}  # None: every code equal


def tsne_plot(
  codes: np.ndarray, labels: np.ndarray, path: str, *, title: str, sample: int = 2000, seed: int = 0
) -> dict:
  """Writes the t-SNE scatter of a seeded sample of the codes (Hamming metric); returns the ratio
  dict plus 'file'. Multi-hot labels are coloured by their first label."""
  rng = np.random.default_rng(seed)
  idx = np.sort(rng.choice(len(codes), min(sample, len(codes)), replace=False))
  b, labels = _signs(codes[idx]), np.asarray(labels)[idx]
  ratio = class_distance_ratio(b, labels)
  # Hamming distance between +-1 codes = bits * (the 'hamming' metric's fraction of differing entries).
  xy = manifold.TSNE(
    2, metric='hamming', init='random', random_state=seed, perplexity=min(30.0, (len(b) - 1) / 3)
  ).fit_transform(b)
  colour = labels if labels.ndim == 1 else labels.argmax(1)
  shown = 'n/a' if ratio['d_w/d_b'] is None else f'{ratio["d_w/d_b"]:.3f}'
  file = plots.scatter_panels(
    {f'{len(b)} codes, d_w/d_b = {shown}': (xy, colour)}, path, title=title, axis_names=('t-SNE 1', 't-SNE 2')
  )
  return {**ratio, 'file': file}
