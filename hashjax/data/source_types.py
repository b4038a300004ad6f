"""The types every dataset source returns (`sources.load` and the readers in `formats/`)."""

from __future__ import annotations

import dataclasses

import ml_dtypes
import numpy as np


@dataclasses.dataclass(frozen=True)
class Split:
  """One split. images: uint8 (N, H, W, C), in memory or a lazy_images.LazyImages (read when
  indexed), or, for the `features` dataset only, float feature vectors (N, D) (a
  feature_rows.FeatureRows over memory-mapped files: formats/features.py); labels: int32 (N,)
  class ids (-1: unlabelled) or 0/1 multi-hot (N, C), always in memory."""

  images: np.ndarray
  labels: np.ndarray

  def __post_init__(self):
    features = self.images.ndim == 2 and (
      np.issubdtype(self.images.dtype, np.floating) or self.images.dtype == ml_dtypes.bfloat16
    )
    if not features and (self.images.ndim != 4 or self.images.dtype != np.uint8):
      raise ValueError(
        f'images must be uint8 (N, H, W, C) or float feature vectors (N, D), got {self.images.dtype} '
        f'{self.images.shape}'
      )
    if len(self.images) != len(self.labels):
      raise ValueError(f'{len(self.images)} images but {len(self.labels)} labels')


@dataclasses.dataclass(frozen=True)
class Source:
  name: str
  splits: dict[str, Split]  # the dataset's own splits, e.g. {'train': ..., 'test': ...}
  num_classes: int
  origin: str  # where the data came from, for the run log


class DatasetUnavailableError(FileNotFoundError):
  """The dataset is not where it was looked for; the message names the expected files and the fix."""
