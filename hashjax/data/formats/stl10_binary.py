"""STL-10 binary (https://cs.stanford.edu/~acoates/stl10/, "STL-10 binary": stl10_binary.tar.gz).

The archive extracts to `stl10_binary/`: `train_X.bin` (5,000 images) / `train_y.bin`, `test_X.bin`
(8,000) / `test_y.bin`, `unlabeled_X.bin` (100,000). An image is 27,648 bytes: three 96x96 planes
(red, green, blue), each stored column-major; the reference code reads them as
`np.transpose(x.reshape(-1, 3, 96, 96), (0, 3, 2, 1))`. Labels are uint8 1..10 on disk, 0..9 here.

Splits (the names of the tfds route, which `protocols.unlabelled` and configs/cimon.py:stl10 use):
'train' and 'test' in memory (360 MB), 'unlabelled' (label -1; present when unlabeled_X.bin is)
memory-mapped and transposed image by image when indexed, so its 2.7 GB are never read whole.

The .tar.gz itself is not read: a gzip stream cannot be memory-mapped, and streaming 2.6 GB of it at
every start would be slow. Extract it once; given the archive, the loader uses a `stl10_binary/`
already extracted next to it, else fails with the `tar xzf` command.
"""

from __future__ import annotations

import os

import numpy as np

from hashjax.data import lazy_images
from hashjax.data import source_types
from hashjax.data.formats import locate as locate_lib

SIDE = 96
IMAGE_BYTES = 3 * SIDE * SIDE
NUM_CLASSES = 10
URL = 'https://cs.stanford.edu/~acoates/stl10/'
ARCHIVE, FOLDER, MARKER = 'stl10_binary.tar.gz', 'stl10_binary', 'train_X.bin'
LABELLED = {'train': ('train_X.bin', 'train_y.bin'), 'test': ('test_X.bin', 'test_y.bin')}
UNLABELLED = 'unlabeled_X.bin'


def locate(name: str, data_dir: str | None) -> tuple[str, str] | None:
  """('folder', path) of the extracted files in `data_dir`, or None when it holds neither them nor
  the archive.

  Raises:
    source_types.DatasetUnavailableError: `data_dir` holds only the archive (module doc); the message
      is the `tar xzf` command.
  """
  del name
  found = locate_lib.locate(data_dir, FOLDER, ARCHIVE, MARKER)
  if found is None or found[0] == 'folder':
    return found
  parent = os.path.dirname(os.path.abspath(found[1]))
  if os.path.isfile(os.path.join(parent, FOLDER, MARKER)):
    return 'folder', os.path.join(parent, FOLDER)
  raise source_types.DatasetUnavailableError(
    f'stl10: extract the archive once (its unlabelled images are memory-mapped, which a .tar.gz '
    f'cannot be): tar xzf {found[1]} -C {parent}  then set '
    f'--config.dataset.data_dir={os.path.join(parent, FOLDER)}'
  )


def expected(name: str) -> str:
  del name
  return f'{FOLDER}/ (STL-10 binary, {URL}: extract {ARCHIVE} with tar xzf)'


def _num_images(path: str) -> int:
  size = os.path.getsize(path)
  if size == 0 or size % IMAGE_BYTES:
    raise ValueError(
      f'stl10: {path} has {size:,} bytes, not a whole number of 96x96x3 images '
      f'({IMAGE_BYTES:,} bytes each): the file is truncated; extract {ARCHIVE} again'
    )
  return size // IMAGE_BYTES


def _to_hwc(planes: np.ndarray) -> np.ndarray:
  """(..., 3, 96, 96) column-major planes -> (..., 96, 96, 3) row-major images (the reference transpose)."""
  return np.ascontiguousarray(np.moveaxis(planes, -3, -1).swapaxes(-3, -2))


class PlanarImageFile:
  """read(i) -> image i, uint8 (96, 96, 3), of a memory-mapped STL-10 .bin file: only that image is read."""

  def __init__(self, path: str):
    self.path = path
    self.memmap = np.memmap(path, np.uint8, 'r', shape=(_num_images(path), 3, SIDE, SIDE))

  def __len__(self) -> int:
    return len(self.memmap)

  def __call__(self, i) -> np.ndarray:
    return _to_hwc(self.memmap[i])


def _labelled(folder: str, images_file: str, labels_file: str) -> source_types.Split:
  images_path, labels_path = os.path.join(folder, images_file), os.path.join(folder, labels_file)
  for path in (images_path, labels_path):
    if not os.path.isfile(path):
      raise source_types.DatasetUnavailableError(f'stl10: {path} is missing: extract {ARCHIVE} again ({URL})')
  n = _num_images(images_path)
  labels = np.fromfile(labels_path, np.uint8)
  if len(labels) != n:
    raise ValueError(
      f'stl10: {labels_path} has {len(labels):,} labels but {images_file} has {n:,} images: '
      f'one of them is truncated; extract {ARCHIVE} again'
    )
  if labels.min() < 1 or labels.max() > NUM_CLASSES:
    raise ValueError(
      f'stl10: {labels_path} holds labels {labels.min()}..{labels.max()}, expected 1..10: '
      f'not an STL-10 label file; extract {ARCHIVE} again'
    )
  images = _to_hwc(np.fromfile(images_path, np.uint8).reshape(n, 3, SIDE, SIDE))
  return source_types.Split(images, labels.astype(np.int32) - 1)


def load(name: str, location: tuple[str, str]) -> source_types.Source:
  """Reads STL-10 from the extracted folder (`location` as `locate` returns it).

  Returns:
    Splits 'train', 'test' (uint8 (N, 96, 96, 3) in memory, int32 labels 0..9) and, when
    unlabeled_X.bin is there, 'unlabelled' (a lazy_images.LazyImages over the memory-mapped file,
    labels -1).

  Raises:
    ValueError: a truncated file (size not a whole number of images, or labels that do not match the
      images), naming the file and the fix.
    source_types.DatasetUnavailableError: a labelled file is missing.
  """
  del name
  folder = location[1]
  splits = {split: _labelled(folder, *files) for split, files in LABELLED.items()}
  unlabelled_path = os.path.join(folder, UNLABELLED)
  if os.path.isfile(unlabelled_path):
    read = PlanarImageFile(unlabelled_path)
    images = lazy_images.LazyImages(read, np.arange(len(read)), (SIDE, SIDE, 3))
    splits['unlabelled'] = source_types.Split(images, np.full(len(read), -1, np.int32))
  return source_types.Source('stl10', splits, NUM_CLASSES, f'STL-10 binary at {folder} (unlabelled memory-mapped)')
