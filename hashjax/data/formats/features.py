"""The `features` dataset: precomputed feature vectors (e.g. DINOv2 embeddings) and their labels.

`--config.dataset.name=features --config.dataset.data_dir=DIR`, where DIR holds, per split
(`train` and `test` required; `database` and `unlabelled` optional), either
  * `<split>.npz`, an UNCOMPRESSED `np.savez(path, features=F, labels=L)`, or
  * the pair `<split>_features.npy` + `<split>_labels.npy` (`np.save`; what
    `python -m hashjax.extract_features` writes).
`features`: (N, D) float16, bfloat16 (stored as numpy writes it, descr '<V2'), float32 or float64,
the same D in every split. `labels`: (N,) integer class ids (-1: unlabelled) or (N, C) 0/1
multi-hot (any integer, bool or float dtype holding 0 and 1 only).

The features are memory-mapped, never read whole (`feature_rows.FeatureRows`): a `.npy` with
`np.load(mmap_mode='r')`, an `.npz` member at its offset inside the zip file, which only works for
members stored uncompressed. `np.savez_compressed` files are refused, naming the fix (re-save with
`np.savez`, or as `.npy` pairs). The labels are small and read into memory. The loader checks every
split once (in chunks, bounded memory): the features' shape and dtype, their row count against the
labels', their width against the other splits', and that every value is finite; each failure is
one line naming the file and the fix. A DIR that `extract_features` has not finished (its
`progress.json` says so) is refused with the command to finish it.

Class count: the label width of multi-hot labels, else the largest class id + 1.
"""

from __future__ import annotations

import json
import os
import zipfile

import ml_dtypes
import numpy as np

from hashjax.data import feature_rows
from hashjax.data import source_types

SPLITS = ('train', 'test', 'database', 'unlabelled')  # the order of the pool (protocols._pool)
REQUIRED = ('train', 'test')
PROGRESS = 'progress.json'  # written by hashjax.extract_features while it runs
_FLOATS = (np.float16, np.float32, np.float64)
_CHECK_ROWS = 65536  # rows per chunk of the finiteness check
_WRITE_HINT = 'python -m hashjax.extract_features --config ... --out DIR (README, "Foundation-model features")'


def expected(name: str = 'features') -> str:
  del name
  return (
    'train and test splits, each <split>.npz (uncompressed np.savez with arrays features (N, D) and labels) or '
    '<split>_features.npy + <split>_labels.npy'
  )


def _npy_header(f) -> tuple[np.dtype, tuple[int, ...], bool]:
  version = np.lib.format.read_magic(f)
  if version == (1, 0):
    shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
  else:
    shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
  return dtype, shape, fortran


def _as_float(dtype: np.dtype, where: str) -> np.dtype:
  """The feature dtype a stored dtype stands for: a float, or bfloat16 for numpy's '<V2'."""
  if dtype == np.dtype('V2'):  # np.save of an ml_dtypes.bfloat16 array
    return np.dtype(ml_dtypes.bfloat16)
  if dtype in [np.dtype(t) for t in _FLOATS] or dtype == np.dtype(ml_dtypes.bfloat16):
    return dtype
  raise ValueError(
    f'{where} has dtype {dtype}: features must be float16, bfloat16, float32 or float64 '
    f'(convert with features.astype(np.float16) or np.float32)'
  )


def memmap_npy(path: str, mode: str = 'r') -> np.memmap:
  """The (N, D) features of a .npy file as a memory map (`mode` 'r', or 'r+' to write into it), its
  dtype a float (bfloat16 for numpy's '<V2'); checked as the module doc says (not the values)."""
  with open(path, 'rb') as f:
    try:
      dtype, shape, fortran = _npy_header(f)
    except ValueError as e:
      raise ValueError(f'{path} is not a .npy file ({e}); write it with np.save') from None
    offset = f.tell()
  return _memmap(path, dtype, shape, fortran, offset, path, mode)


def _memmap(path, dtype, shape, fortran, offset, where, mode: str = 'r') -> np.ndarray:
  dtype = _as_float(dtype, where)
  if len(shape) != 2:
    raise ValueError(f'{where} has shape {shape}: features must be 2-D (N, D), one row per example')
  if fortran:
    raise ValueError(f'{where} is stored in Fortran order: save np.ascontiguousarray(features)')
  need = offset + int(np.prod(shape)) * dtype.itemsize
  if os.path.getsize(path) < need:
    raise ValueError(f'{where} is truncated: its header says {shape} {dtype}; write it again')
  if 0 in shape:
    return np.zeros(shape, dtype)
  return np.memmap(path, dtype=dtype, mode=mode, offset=offset, shape=shape)


def _memmap_npz_member(path: str, member: str) -> np.ndarray:
  """The npz member `member`.npy as a read-only memory map at its offset inside the zip file."""
  where = f'{path}:{member}'
  with zipfile.ZipFile(path) as z:
    try:
      info = z.getinfo(member + '.npy')
    except KeyError:
      raise ValueError(
        f'{path} has no {member!r} array (it has {", ".join(n[:-4] for n in z.namelist())}): '
        f'save it as np.savez(path, features=..., labels=...)'
      ) from None
    if info.compress_type != zipfile.ZIP_STORED:
      raise ValueError(
        f'{where} is compressed (np.savez_compressed), which cannot be memory-mapped: re-save it with '
        f'np.savez, or as {os.path.basename(path)[:-4]}_features.npy + _labels.npy pairs (np.save)'
      )
    header_offset = info.header_offset
  with open(path, 'rb') as f:
    f.seek(header_offset)
    local = f.read(30)  # the local file header: its name and extra lengths fix where the data starts
    if local[:4] != b'PK\x03\x04':
      raise ValueError(f'{where}: bad zip local header; write the file again with np.savez')
    start = header_offset + 30 + int.from_bytes(local[26:28], 'little') + int.from_bytes(local[28:30], 'little')
    f.seek(start)
    dtype, shape, fortran = _npy_header(f)
    offset = f.tell()
  return _memmap(path, dtype, shape, fortran, offset, where)


def _labels(array: np.ndarray, where: str) -> np.ndarray:
  """int32 class ids (N,) or 0/1 multi-hot (N, C), checked."""
  if array.ndim == 1:
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.bool_)):
      raise ValueError(f'{where} has dtype {array.dtype}: class-id labels must be integers (-1: unlabelled)')
    if len(array) and array.min() < -1:
      raise ValueError(f'{where} holds class id {array.min()}: class ids are >= 0 (-1: unlabelled)')
    return array.astype(np.int32)
  if array.ndim == 2:
    if not np.isin(array, (0, 1)).all():
      raise ValueError(f'{where}: multi-hot labels (N, C) must hold only 0 and 1')
    return array.astype(np.int32)
  raise ValueError(f'{where} has shape {array.shape}: labels are (N,) class ids or (N, C) multi-hot')


def _check_finite(features: np.ndarray, where: str) -> None:
  for start in range(0, len(features), _CHECK_ROWS):
    block = np.asarray(features[start : start + _CHECK_ROWS], np.float32)
    bad = ~np.isfinite(block)
    if bad.any():
      row = start + int(np.flatnonzero(bad.any(axis=1))[0])
      raise ValueError(
        f'{where} holds non-finite values (NaN or inf; the first in row {row}): '
        f'replace or drop those rows (np.nan_to_num, or recompute them)'
      )


def _read_split(directory: str, split: str) -> tuple[np.ndarray, np.ndarray, str] | None:
  """(features memmap, labels, where the features are) of `split`, or None when no file is there."""
  npz = os.path.join(directory, f'{split}.npz')
  pair = [os.path.join(directory, f'{split}_{kind}.npy') for kind in ('features', 'labels')]
  found_pair = [os.path.isfile(p) for p in pair]
  if os.path.isfile(npz) and any(found_pair):
    raise ValueError(f'{directory} holds both {split}.npz and {split}_*.npy: keep one of them')
  if os.path.isfile(npz):
    features, where = _memmap_npz_member(npz, 'features'), f'{npz}:features'
    with np.load(npz, allow_pickle=False) as z:
      if 'labels' not in z:
        raise ValueError(f'{npz} has no labels array: save it as np.savez(path, features=..., labels=...)')
      labels, labels_where = z['labels'], f'{npz}:labels'
  elif any(found_pair):
    if not all(found_pair):
      missing = pair[found_pair.index(False)]
      raise source_types.DatasetUnavailableError(
        f'features: {missing} is missing (its pair {pair[found_pair.index(True)]} is there): write it with np.save'
      )
    features, where = memmap_npy(pair[0]), pair[0]
    labels, labels_where = np.load(pair[1], allow_pickle=False), pair[1]
  else:
    return None
  labels = _labels(labels, labels_where)
  if len(labels) != len(features):
    raise ValueError(
      f'{where} has {len(features)} rows but {labels_where} has {len(labels)} labels: '
      f'they must be one label row per feature row, in the same order'
    )
  _check_finite(features, where)
  return features, labels, where


def _check_complete(directory: str) -> None:
  path = os.path.join(directory, PROGRESS)
  if not os.path.isfile(path):
    return
  with open(path) as f:
    progress = json.load(f)
  if not progress.get('complete'):
    todo = ', '.join(f'{s} {d}/{n}' for s, (d, n) in progress.get('rows', {}).items() if d < n)
    raise source_types.DatasetUnavailableError(
      f'features: {directory} is an unfinished python -m hashjax.extract_features output (rows written: '
      f'{todo or "none yet"}): rerun the same extract_features command to finish it'
    )


def load(name: str, data_dir: str | None, lazy: bool = False) -> source_types.Source:
  """The splits of DIR (module doc) as memory-mapped `FeatureRows`; `lazy` is moot (always mapped)."""
  del lazy
  if not data_dir:
    raise source_types.DatasetUnavailableError(
      f'{name}: set --config.dataset.data_dir to a folder with {expected()} (write them with {_WRITE_HINT})'
    )
  if not os.path.isdir(data_dir):
    raise source_types.DatasetUnavailableError(
      f'{name}: dataset.data_dir={data_dir!r} is not a folder; it must hold {expected()}'
    )
  _check_complete(data_dir)
  splits, widths, num_classes = {}, {}, 0
  for split in SPLITS:
    found = _read_split(data_dir, split)
    if found is None:
      if split in REQUIRED:
        raise source_types.DatasetUnavailableError(
          f'{name}: no {split} split in {data_dir}: expected {split}.npz (uncompressed np.savez with features and '
          f'labels) or {split}_features.npy + {split}_labels.npy; write them with {_WRITE_HINT}'
        )
      continue
    features, labels, where = found
    widths[where] = features.shape[1]
    if len(set(widths.values())) > 1:
      first = next(iter(widths))
      raise ValueError(
        f'{where} has {features.shape[1]} features per row but {first} has {widths[first]}: every split '
        f'must come from the same feature extractor (the same width D)'
      )
    splits[split] = source_types.Split(feature_rows.FeatureRows([features]), labels)
    num_classes = max(num_classes, labels.shape[1] if labels.ndim == 2 else int(labels.max(initial=-1)) + 1)
  label_shapes = {s.labels.shape[1:] for s in splits.values()}
  if len(label_shapes) > 1:
    raise ValueError(
      f'{data_dir}: the splits have labels of different kinds or widths ({sorted(label_shapes)}): use class ids '
      f'everywhere or multi-hot rows of one width'
    )
  dtype = next(iter(splits.values())).images.dtype
  width = next(iter(widths.values()))
  return source_types.Source(
    name, splits, num_classes, f'{width}-d {dtype} feature vectors memory-mapped from {data_dir}'
  )
