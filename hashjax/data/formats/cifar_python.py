"""The CIFAR-10 / CIFAR-100 "python version" (https://www.cs.toronto.edu/~kriz/cifar.html).

`cifar-10-python.tar.gz` extracts to `cifar-10-batches-py/` (`data_batch_1` .. `data_batch_5`,
`test_batch`); `cifar-100-python.tar.gz` to `cifar-100-python/` (`train`, `test`). Each file is a
dict pickled by Python 2, so its keys are bytes: `b'data'` is uint8 (N, 3072), one image per row
stored channel-planar (the 32x32 red plane, then green, then blue, each row-major); labels are
`b'labels'` (CIFAR-10) or `b'fine_labels'` / `b'coarse_labels'` (CIFAR-100), lists of N ints.

Read from the extracted folder or straight from the .tar.gz (members are streamed from the
archive; nothing is written to disk). The whole dataset is 180 MB: always in memory. The pickles
are read by an unpickler that builds only NumPy arrays and plain Python values, so a tampered file
cannot run code.
"""

from __future__ import annotations

from collections.abc import Callable
import dataclasses
import io
import os
import pickle
import re
import tarfile
import zlib

import numpy as np

from hashjax.data import source_types
from hashjax.data.formats import locate as locate_lib

SIDE = 32
IMAGE_BYTES = SIDE * SIDE * 3
LABEL_TYPES = ('fine', 'coarse')  # CIFAR-100's 100 classes or its 20 superclasses


@dataclasses.dataclass(frozen=True)
class Layout:
  title: str  # the download page's name for it
  archive: str  # the published archive
  folder: str  # what the archive extracts to
  marker: str  # a file only that folder holds
  train: re.Pattern  # names of the training batches (CIFAR-10: data_batch_N, read in the order of N)
  test: str

  def batch_number(self, member: str) -> int:
    match = self.train.fullmatch(member)
    return int(match.group(1)) if match.groups() else 0


URL = 'https://www.cs.toronto.edu/~kriz/cifar.html'
LAYOUTS = {
  'cifar10': Layout(
    'the CIFAR-10 python version',
    'cifar-10-python.tar.gz',
    'cifar-10-batches-py',
    'test_batch',
    re.compile(r'data_batch_(\d+)'),
    'test_batch',
  ),
  'cifar100': Layout(
    'the CIFAR-100 python version', 'cifar-100-python.tar.gz', 'cifar-100-python', 'test', re.compile(r'train'), 'test'
  ),
}

# Globals a CIFAR pickle needs: NumPy's array rebuilders (Python 2 wrote numpy.core.*; NumPy 2 reads
# it as numpy._core.*) and, in protocol-2 pickles written by Python 3, _codecs.encode for bytes.
_ALLOWED = {
  ('numpy', 'ndarray'),
  ('numpy', 'dtype'),
  ('numpy.core.multiarray', '_reconstruct'),
  ('numpy._core.multiarray', '_reconstruct'),
  ('numpy.core.multiarray', 'scalar'),
  ('numpy._core.multiarray', 'scalar'),
  ('_codecs', 'encode'),
}


class _ArraysOnly(pickle.Unpickler):
  def find_class(self, module, name):
    if (module, name) not in _ALLOWED:
      raise pickle.UnpicklingError(f'{module}.{name} is not something a CIFAR pickle holds')
    if module.startswith('numpy.core.') and hasattr(np, '_core'):
      module = 'numpy._core.' + module[len('numpy.core.') :]  # numpy.core is a deprecated alias
    return super().find_class(module, name)


def locate(name: str, data_dir: str | None) -> tuple[str, str] | None:
  """('folder' | 'archive', path) of `name`'s files in `data_dir`, or None (module doc)."""
  layout = LAYOUTS[name]
  return locate_lib.locate(data_dir, layout.folder, layout.archive, layout.marker)


def expected(name: str) -> str:
  """What `locate` looks for, and where to get it: for 'not found' messages."""
  layout = LAYOUTS[name]
  return f'{layout.archive} or {layout.folder}/ ({layout.title}, {URL})'


def _bad_file(name: str, where: str, problem: str) -> ValueError:
  return ValueError(
    f'{name}: {where}: {problem}; the file is truncated or not {LAYOUTS[name].title}: '
    f'download {LAYOUTS[name].archive} again from {URL}'
  )


def _unpickle(name: str, f, where: str) -> dict[str, object]:
  try:
    d = _ArraysOnly(f, encoding='bytes').load()
  except (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    AttributeError,
    KeyError,
    IndexError,
    OSError,
    zlib.error,
  ) as e:
    raise _bad_file(name, where, f'cannot unpickle ({type(e).__name__}: {e})') from None
  if not isinstance(d, dict):
    raise _bad_file(name, where, f'holds a {type(d).__name__}, not a dict')
  return {k.decode('latin1') if isinstance(k, bytes) else k: v for k, v in d.items()}


def _read(name: str, kind: str, path: str, wanted: Callable[[str], bool]) -> dict[str, tuple[str, dict]]:
  """{base name: (where, unpickled dict)} of the archive members (or folder files) for which wanted(base
  name); where names the file for messages."""
  out = {}
  if kind == 'folder':
    for member in sorted(os.listdir(path)):
      if wanted(member):
        where = os.path.join(path, member)
        with open(where, 'rb') as f:
          out[member] = where, _unpickle(name, f, where)
    return out
  try:
    with tarfile.open(path, 'r:gz') as tar:
      for member in tar:  # in archive order: one pass over the compressed stream
        base = os.path.basename(member.name)
        if member.isfile() and wanted(base):
          where = f'{path}:{member.name}'
          out[base] = where, _unpickle(name, io.BytesIO(tar.extractfile(member).read()), where)
  except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
    raise _bad_file(name, path, f'cannot read the archive ({type(e).__name__}: {e})') from None
  return out


def _split(name: str, batches: list[tuple[str, dict]], label_key: str, num_classes: int) -> source_types.Split:
  images, labels = [], []
  for where, d in batches:
    if 'data' not in d or label_key not in d:
      raise _bad_file(name, where, f'has keys {sorted(d)}, expected data and {label_key}')
    data, y = np.asarray(d['data']), np.asarray(d[label_key])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != IMAGE_BYTES:
      raise _bad_file(name, where, f'data is {data.dtype} {data.shape}, expected uint8 (N, {IMAGE_BYTES})')
    if y.shape != (len(data),):
      raise _bad_file(name, where, f'{len(data)} images but {y.size} labels')
    if y.size and not 0 <= y.min() <= y.max() < num_classes:
      raise _bad_file(name, where, f'{label_key} span {y.min()}..{y.max()}, expected 0..{num_classes - 1}')
    # Channel-planar rows: (N, C, H, W) -> (N, H, W, C).
    images.append(data.reshape(-1, 3, SIDE, SIDE).transpose(0, 2, 3, 1))
    labels.append(y.astype(np.int32))
  return source_types.Split(np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels))


def load(name: str, location: tuple[str, str], label_type: str | None = None) -> source_types.Source:
  """Reads CIFAR-10 or CIFAR-100 from `location` (as `locate` returns it).

  Args:
    name: 'cifar10' or 'cifar100'.
    location: ('folder', path) or ('archive', path).
    label_type: CIFAR-100 only: 'fine' (100 classes; the default) or 'coarse' (20 superclasses).

  Returns:
    Splits 'train' (every data_batch_N present, in number order: whatever number of images they
    hold) and 'test', uint8 (N, 32, 32, 3) images and int32 class ids, in file order.

  Raises:
    ValueError: an unreadable or inconsistent file (message: the file and the fix), a gap in the
      data_batch numbering, or a bad label_type.
    source_types.DatasetUnavailableError: the location lacks the training or test batches.
  """
  layout, (kind, path) = LAYOUTS[name], location
  label_type = label_type or 'fine'
  if label_type not in LABEL_TYPES:
    raise ValueError(f'dataset.label_type={label_type!r}: valid values are {", ".join(LABEL_TYPES)}')
  label_key = 'labels' if name == 'cifar10' else f'{label_type}_labels'
  found = _read(name, kind, path, lambda m: m == layout.test or layout.train.fullmatch(m) is not None)
  train_members = sorted((m for m in found if layout.train.fullmatch(m)), key=layout.batch_number)
  if not train_members or layout.test not in found:
    missing = layout.test if train_members else f'the training batches ({layout.train.pattern})'
    raise source_types.DatasetUnavailableError(
      f'{name}: {path} lacks {missing}: download {layout.archive} ({layout.title}) again from {URL}'
    )
  if name == 'cifar10':
    numbers = [layout.batch_number(m) for m in train_members]
    if numbers != list(range(1, len(numbers) + 1)):
      raise ValueError(
        f'{name}: {path} has data_batch_{numbers} (a gap): a batch is missing; extract {layout.archive} again'
      )
  num_classes = 10 if name == 'cifar10' else (100 if label_type == 'fine' else 20)
  splits = {
    'train': _split(name, [found[m] for m in train_members], label_key, num_classes),
    'test': _split(name, [found[layout.test]], label_key, num_classes),
  }
  origin = f'{layout.title} ({kind}) at {path}' + (f', {label_type} labels' if name == 'cifar100' else '')
  return source_types.Source(name, splits, num_classes, origin)
