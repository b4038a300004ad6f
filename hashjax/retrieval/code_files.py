"""Hash codes and labels from .npy files written by any framework (`python -m hashjax.evaluate`,
`python -m hashjax.pair_verification`): one clear line for a file that is not what it should be.

Codes: (n, bits) ±1, {0,1} or real-valued (sign taken, sign(0) = +1), or already packed uint32
(n, ceil(bits/32)), which needs `bits`. Any uint32 array is read as packed; an array whose values are
all 0 or 1 (any dtype) is read as {0,1} bits (bit = value), otherwise bit = (value >= 0).
"""

from __future__ import annotations

import numpy as np

from hashjax.retrieval.codes import num_words
from hashjax.retrieval.codes import pack_codes


def load_npy(path: str, what: str) -> np.ndarray:
  """A .npy array (NumPy's binary format, np.save), with one clear line for anything else."""
  try:
    with open(path, 'rb') as f:
      magic = f.read(6)
  except OSError as e:
    raise ValueError(f'cannot read {what} from {path}: {e.strerror}') from None
  if magic != b'\x93NUMPY':
    raise ValueError(
      f'{what}: {path} is not a .npy file (np.save writes one; a text file can be '
      f'converted with np.save(path, np.loadtxt(text_file)))'
    )
  try:
    return np.load(path, allow_pickle=False)
  except (OSError, ValueError) as e:
    raise ValueError(f'cannot read {what} from {path}: {e}') from None


def packed_codes(arr: np.ndarray, what: str, bits: int | None):
  """(packed uint32 codes, bits) of a codes array in any of the forms above."""
  if arr.ndim != 2:
    raise ValueError(f'{what} must be 2-D, got shape {arr.shape}')
  if arr.dtype == np.uint32:
    if bits is None:
      raise ValueError(f'{what} is packed uint32: pass --bits')
    if arr.shape[1] != num_words(bits):
      raise ValueError(f'{what} has {arr.shape[1]} words per code; --bits {bits} needs {num_words(bits)}')
    return arr, bits
  if bits is not None and arr.shape[1] != bits:
    raise ValueError(f'{what} has {arr.shape[1]} bits but --bits {bits}')
  if arr.dtype.kind == 'f' and np.isnan(arr).any():
    raise ValueError(f'{what} contain NaN')
  binary01 = bool(((arr == 0) | (arr == 1)).all())  # ±1 codes never hold 0
  return pack_codes(arr, binary01=binary01), arr.shape[1]
