"""Dataset sources: each returns the dataset's own splits as in-memory uint8 arrays.

Three kinds of source, picked by name through the explicit `SOURCES` dict:
  * `digits`: scikit-learn's 8x8 digits (ships with scikit-learn: no download).
  * `fashion_mnist_idx` / `mnist_idx`: MNIST-format IDX files on disk (Debian's
    `dataset-fashion-mnist` package puts Fashion-MNIST in /usr/share/datasets/fashion-mnist).
  * tensorflow-datasets names (`cifar10`, `mnist`, `fashion_mnist`, ...), read with
    `tfds.data_source` (array_record files, no TensorFlow) after `python -m hashjax.prepare_data NAME`.
    `stl10` has splits train (5,000 labelled), test (8,000) and unlabelled (100,000, label -1): the
    'unlabelled' protocol trains on a subset of the last (configs/cimon.py:stl10).
  `fashion_mnist` and `mnist` prefer local IDX files and fall back to tfds.
Every loader takes (data_dir, lazy). lazy=True keeps a tfds split's images as a
`lazy_images.LazyImages` over its records, so that each process decodes only the images it indexes
(its share of every batch; labels are read for all records); digits and IDX files are small and
always in memory.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import os
import zlib
from collections.abc import Callable

import numpy as np

from hashjax.data import lazy_images


@dataclasses.dataclass(frozen=True)
class Split:
  """One split. images: uint8 (N, H, W, C), in memory or a lazy_images.LazyImages (per-process
  reads); labels: int32 (N,) or multi-hot (N, C), always in memory."""
  images: np.ndarray
  labels: np.ndarray

  def __post_init__(self):
    if self.images.ndim != 4 or self.images.dtype != np.uint8:
      raise ValueError(f'images must be uint8 (N, H, W, C), got {self.images.dtype} {self.images.shape}')
    if len(self.images) != len(self.labels):
      raise ValueError(f'{len(self.images)} images but {len(self.labels)} labels')


@dataclasses.dataclass(frozen=True)
class Source:
  name: str
  splits: dict[str, Split]  # the dataset's own splits, e.g. {'train': ..., 'test': ...}
  num_classes: int
  origin: str  # where the data came from, for the run log


class DatasetUnavailableError(FileNotFoundError):
  """Raised with the exact command that makes the dataset available."""


# ---------------------------------------------------------------- digits
DIGITS_TEST_SIZE = 297  # fixed, seeded split of the 1797 images: 1500 train / 297 test


def load_digits(data_dir: str | None = None, lazy: bool = False) -> Source:
  del data_dir, lazy
  from sklearn.datasets import load_digits as sk_load_digits  # pylint: disable=g-import-not-at-top
  d = sk_load_digits()
  # Values are 0..16: scale to the full uint8 range so every source looks alike.
  images = np.clip(d.images * 16, 0, 255).astype(np.uint8)[..., None]
  labels = d.target.astype(np.int32)
  order = np.random.default_rng(0).permutation(len(images))
  test, train = order[:DIGITS_TEST_SIZE], order[DIGITS_TEST_SIZE:]
  splits = {'train': Split(images[train], labels[train]), 'test': Split(images[test], labels[test])}
  return Source('digits', splits, 10, 'scikit-learn load_digits (embedded)')


# ---------------------------------------------------------------- IDX files
IDX_DIRS = {
    'fashion_mnist': ('/usr/share/datasets/fashion-mnist', 'sudo apt-get install dataset-fashion-mnist'),
    'mnist': ('/usr/share/datasets/mnist', 'python -m hashjax.prepare_data mnist'),
}
IDX_FILES = {'train': ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
             'test': ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')}


def read_idx(path: str) -> np.ndarray:
  """Reads an MNIST-format IDX file (optionally gzipped) into a numpy array."""
  opener = gzip.open if path.endswith('.gz') else open
  try:
    with opener(path, 'rb') as f:
      data = f.read()
  except (EOFError, gzip.BadGzipFile, zlib.error) as e:
    raise ValueError(f'{path} is truncated or not a gzip file ({type(e).__name__}: {e}); download it again') from None
  if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
    raise ValueError(f'{path} is not an unsigned-byte IDX file (bad magic number)')
  ndim = data[3]
  shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], 'big') for i in range(ndim))
  array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
  if array.size != int(np.prod(shape)):
    raise ValueError(f'{path} is truncated: header says {shape}, found {array.size} values')
  return array.reshape(shape)


def _find(directory: str, stem: str) -> str | None:
  for name in (stem, stem + '.gz'):
    if os.path.exists(os.path.join(directory, name)):
      return os.path.join(directory, name)
  return None


def load_idx(name: str, data_dir: str | None = None, lazy: bool = False) -> Source:
  del lazy  # a few tens of MB: in memory
  default_dir, how = IDX_DIRS[name]
  directory = data_dir or default_dir
  splits = {}
  for split, (img_stem, lbl_stem) in IDX_FILES.items():
    img_path, lbl_path = _find(directory, img_stem), _find(directory, lbl_stem)
    if img_path is None or lbl_path is None:
      raise DatasetUnavailableError(
          f'{name}: IDX files {img_stem}[.gz] / {lbl_stem}[.gz] not found in {directory}. '
          f'Get them with: {how}  (or point --config.dataset.data_dir at a folder holding them)')
    splits[split] = Split(read_idx(img_path)[..., None], read_idx(lbl_path).astype(np.int32))
  return Source(name, splits, 10, f'IDX files in {directory}')


# ---------------------------------------------------------------- tensorflow-datasets
TFDS_NUM_CLASSES = {'cifar10': 10, 'cifar100': 100, 'mnist': 10, 'fashion_mnist': 10, 'stl10': 10,
                    'svhn_cropped': 10}


def split_from_records(records, label_records=None) -> Split:
  """A lazy Split over a random-access sequence of {'image', 'label'} records (a tfds data source);
  labels from `label_records` (the same records without image decoding) when given."""
  label_records = records if label_records is None else label_records
  labels = np.array([label_records[i].get('label', -1) for i in range(len(label_records))], np.int32)
  return Split(lazy_images.LazyImages.from_records(records), labels)


def load_tfds(name: str, data_dir: str | None = None, lazy: bool = False) -> Source:
  """Reads prepared array_record files through `tfds.data_source` (no TensorFlow needed); lazy:
  images decoded when indexed (`split_from_records`), else every split read into memory."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  try:
    builder = tfds.builder(name, data_dir=data_dir)
    info = builder.info
    if not builder.is_prepared():
      raise FileNotFoundError(builder.data_dir)
    sources = {s: tfds.data_source(name, split=s, data_dir=data_dir) for s in info.splits}
  except Exception as e:  # tfds raises several types for "not there"
    raise DatasetUnavailableError(
        f'{name}: tensorflow-datasets copy not prepared ({e}). Get it (needs internet once) with: '
        f'python -m hashjax.prepare_data {name}' + (f' --data_dir {data_dir}' if data_dir else '')) from e
  if lazy:
    no_images = {'image': tfds.decode.SkipDecoding()}
    splits = {s: split_from_records(source, tfds.data_source(name, split=s, data_dir=data_dir, decoders=no_images))
              for s, source in sources.items()}
    return Source(name, splits, TFDS_NUM_CLASSES.get(name, info.features['label'].num_classes),
                  f'tfds {name} in {data_dir or "~/tensorflow_datasets"}, records read per process')
  splits = {}
  for split, source in sources.items():
    # Filled in place: STL-10's 100k unlabelled 96x96 images are 2.8 GB, a list of records twice that.
    first = np.asarray(source[0]['image'])
    images = np.empty((len(source), *first.shape), np.uint8)
    labels = np.empty(len(source), np.int32)
    for i in range(len(source)):
      record = source[i]
      images[i], labels[i] = record['image'], record.get('label', -1)  # unlabelled splits: -1
    splits[split] = Split(images if images.ndim == 4 else images[..., None], labels)
  return Source(name, splits, TFDS_NUM_CLASSES.get(name, info.features['label'].num_classes),
                f'tfds {name} in {data_dir or "~/tensorflow_datasets"}')


def _idx_then_tfds(name: str) -> Callable[[str | None, bool], Source]:
  def load(data_dir: str | None = None, lazy: bool = False) -> Source:
    try:
      return load_idx(name, data_dir)
    except DatasetUnavailableError as idx_error:
      try:
        return load_tfds(name, data_dir, lazy)
      except DatasetUnavailableError as tfds_error:
        raise DatasetUnavailableError(f'{idx_error}; or: {tfds_error}') from None
  return load


SOURCES: dict[str, Callable[[str | None, bool], Source]] = {
    'digits': load_digits,
    'fashion_mnist': _idx_then_tfds('fashion_mnist'),
    'mnist': _idx_then_tfds('mnist'),
    'cifar10': functools.partial(load_tfds, 'cifar10'),
    'cifar100': functools.partial(load_tfds, 'cifar100'),
    'stl10': functools.partial(load_tfds, 'stl10'),
}


def load(name: str, data_dir: str | None = None, lazy: bool = False) -> Source:
  if name not in SOURCES:
    raise ValueError(f'unknown dataset {name!r}; valid names: {", ".join(sorted(SOURCES))}')
  return SOURCES[name](data_dir, lazy)
