"""Host-side input checks shared by the metrics, search and the CLI."""

import numpy as np

from hashjax.retrieval.codes import num_words


def check_packed(packed, name: str, bits: int) -> np.ndarray:
  packed = np.asarray(packed)
  if packed.dtype != np.uint32:
    raise ValueError(f'{name} must be packed uint32 codes (see pack_codes), got dtype {packed.dtype}')
  if packed.ndim != 2:
    raise ValueError(f'{name} must be 2-D (n, words), got shape {packed.shape}')
  if packed.shape[0] == 0:
    raise ValueError(f'{name} is empty')
  if packed.shape[1] != num_words(bits):
    raise ValueError(f'{name} has {packed.shape[1]} words per code but bits={bits} needs {num_words(bits)}')
  if bits % 32 and (packed[:, -1] >> np.uint32(bits % 32)).any():
    raise ValueError(f'{name} has set bits past bit {bits} (not packed with bits={bits}?)')
  return packed


def check_labels(labels, name: str, n: int) -> np.ndarray:
  """Returns int32 (n,) class ids or float32 (n, C) 0/1 multi-hot."""
  labels = np.asarray(labels)
  if labels.ndim not in (1, 2):
    raise ValueError(f'{name} must be (n,) class ids or (n, C) multi-hot, got shape {labels.shape}')
  if len(labels) != n:
    raise ValueError(f'{name} has {len(labels)} rows but the codes have {n}')
  if labels.dtype.kind not in 'biuf':
    raise ValueError(f'{name} must be numeric, got dtype {labels.dtype}')
  if labels.dtype.kind == 'f' and np.isnan(labels).any():
    raise ValueError(f'{name} contains NaN')
  if labels.ndim == 1:
    if labels.dtype.kind == 'f' and (labels != np.round(labels)).any():
      raise ValueError(f'{name}: 1-D labels must be integer class ids')
    if labels.size and (labels.min() < -(2**31) or labels.max() >= 2**31):
      raise ValueError(f'{name}: class ids must fit in int32')
    return labels.astype(np.int32)
  return (labels != 0).astype(np.float32)


def check_pair(q_labels: np.ndarray, db_labels: np.ndarray) -> None:
  if q_labels.ndim != db_labels.ndim or q_labels.shape[1:] != db_labels.shape[1:]:
    raise ValueError(f'query labels {q_labels.shape} and database labels {db_labels.shape} are not the same kind')
