"""Bit-packing of binary hash codes.

Packed layout: a code of ``bits`` bits becomes ``ceil(bits / 32)`` uint32 words;
bit ``i`` of the code is bit ``i % 32`` (LSB = 0) of word ``i // 32``. Bits past
``bits`` in the last word are always 0, so XOR + popcount over whole words gives
the exact Hamming distance.

Value -> bit rule (``binary01``):
  * ``binary01=True``: bit = (x > 0). Meant for {0,1} codes.
  * ``binary01=False``: bit = (x >= 0), i.e. sign with sign(0) = +1. Meant for
    ±1 codes and real-valued (pre-sign) codes.
  * ``binary01=None`` (default): True for bool and unsigned-int dtypes, False
    otherwise. For signed/float NumPy input whose values are all in {0, 1} and
    include a 0, the intent is ambiguous (under the sign rule both 0 and 1 give
    bit 1) and ``pack_codes`` raises; pass ``binary01`` explicitly.
"""

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np


def num_words(bits: int) -> int:
  return -(-int(bits) // 32)


def _bits_numpy(codes: np.ndarray, binary01: bool | None) -> np.ndarray:
  """(n, bits) bool array of code bits (host-side, with validation)."""
  if codes.ndim != 2:
    raise ValueError(f'codes must be 2-D (n, bits), got shape {codes.shape}')
  if codes.shape[1] == 0:
    raise ValueError('codes must have at least one bit')
  kind = codes.dtype.kind
  if kind not in 'biuf':
    raise ValueError(f'codes must be bool, int or float, got dtype {codes.dtype}')
  if kind == 'f' and np.isnan(codes).any():
    raise ValueError('codes contain NaN')
  if binary01 is None:
    binary01 = kind in 'bu'
    if not binary01 and codes.size:
      is01 = (codes == 0) | (codes == 1)
      if is01.all() and (codes == 0).any():
        raise ValueError(
          'codes look like {0,1} but have a signed/float dtype; pass '
          'binary01=True (bit = x > 0) or binary01=False (bit = x >= 0)'
        )
  if binary01:
    if kind == 'b':
      return codes
    return codes > 0
  return codes >= 0


def pack_codes(codes, binary01: bool | None = None) -> np.ndarray:
  """Packs (n, bits) codes into (n, ceil(bits/32)) uint32 (rule: module doc)."""
  bits = _bits_numpy(np.asarray(codes), binary01)
  n, k = bits.shape
  w = num_words(k)
  padded = np.zeros((n, w * 32), dtype=bool)
  padded[:, :k] = bits
  # little bit order: bit i -> byte i//8, position i%8; '<u4' view -> word i//32.
  packed = np.packbits(padded, axis=1, bitorder='little')
  return np.ascontiguousarray(packed).view('<u4').astype(np.uint32).reshape(n, w)


def pack_codes_jnp(codes: jnp.ndarray, binary01: bool = False) -> jnp.ndarray:
  """jit-friendly ``pack_codes`` (no validation; ``binary01`` must be static).

  bit = x > 0 if ``binary01`` (or bool dtype) else x >= 0 (sign(0) = +1).
  """
  codes = jnp.asarray(codes)
  n, k = codes.shape
  w = num_words(k)
  if codes.dtype == jnp.bool_:
    bits = codes
  else:
    bits = codes > 0 if binary01 else codes >= 0
  bits = jnp.pad(bits.astype(jnp.uint32), ((0, 0), (0, w * 32 - k)))
  shifts = jnp.arange(32, dtype=jnp.uint32)
  # Distinct powers of two: the uint32 sum equals the bitwise OR, no overflow.
  return jnp.sum(bits.reshape(n, w, 32) << shifts, axis=-1, dtype=jnp.uint32)


def unpack_codes(packed, bits: int) -> np.ndarray:
  """Inverse of ``pack_codes``: (n, bits) int8 in {-1, +1}."""
  packed = np.asarray(packed)
  if packed.dtype != np.uint32 or packed.ndim != 2:
    raise ValueError(f'packed must be 2-D uint32, got {packed.dtype} {packed.shape}')
  if packed.shape[1] != num_words(bits):
    raise ValueError(f'{packed.shape[1]} words cannot hold {bits} bits')
  i = np.arange(bits)
  b = (packed[:, i // 32] >> (i % 32).astype(np.uint32)) & np.uint32(1)
  return (2 * b.astype(np.int8) - 1).astype(np.int8)


class CodeDB(NamedTuple):
  packed: np.ndarray  # (n, words) uint32
  labels: np.ndarray  # (n,) int or (n, C) multi-hot
  ids: np.ndarray  # (n,) item ids
  bits: int


def save_code_db(path, packed, labels, ids, bits: int) -> None:
  """Writes a code database to a plain ``.npz`` (keys packed/labels/ids/bits)."""
  packed, labels, ids = np.asarray(packed), np.asarray(labels), np.asarray(ids)
  if packed.dtype != np.uint32 or packed.ndim != 2:
    raise ValueError(f'packed must be 2-D uint32, got {packed.dtype} {packed.shape}')
  if packed.shape[1] != num_words(bits):
    raise ValueError(f'{packed.shape[1]} words cannot hold {bits} bits')
  n = packed.shape[0]
  if len(labels) != n or len(ids) != n:
    raise ValueError(f'lengths differ: packed {n}, labels {len(labels)}, ids {len(ids)}')
  np.savez(path, packed=packed, labels=labels, ids=ids, bits=np.int64(bits))


def load_code_db(path) -> CodeDB:
  with np.load(path, allow_pickle=False) as f:
    return CodeDB(f['packed'], f['labels'], f['ids'], int(f['bits']))
