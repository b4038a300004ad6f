"""Dataset sources: `load(name, data_dir, lazy)` returns the dataset's own splits, exact pixels and labels.

The source is picked by name through the explicit `SOURCES` dict:
  * `digits`: scikit-learn's 8x8 digits (ships with scikit-learn: no download).
  * `fashion_mnist` / `mnist`: MNIST-format IDX files on disk (Debian's `dataset-fashion-mnist`
    package puts Fashion-MNIST in /usr/share/datasets/fashion-mnist), else tensorflow-datasets.
  * `cifar10`, `cifar100`: the published "python version" (formats/cifar_python.py) when
    `data_dir` holds `cifar-10-python.tar.gz` / `cifar-100-python.tar.gz` or the folder they extract
    to (or is one of those); `cifar100` reads `dataset.label_type` 'fine' (100) or 'coarse' (20).
  * `stl10`: STL-10 binary (formats/stl10_binary.py) when `data_dir` holds `stl10_binary/` (or is
    it): train (5,000 labelled), test (8,000) and unlabelled (100,000, label -1, memory-mapped); the
    'unlabelled' protocol trains on a subset of the last (configs/cimon.py:stl10).
    cifar10, cifar100 and stl10 fall back to tensorflow-datasets (`tfds.data_source`, array_record
    files, no TensorFlow, after `python -m hashjax.prepare_data NAME`) when `data_dir` is unset or
    holds none of those files: the published files first, tfds otherwise.
  * `nus_wide_21`, `coco`, `imagenet100`, `mirflickr25k`, `voc2012`, `image_list`: DeepHash-pytorch's
    train.txt / test.txt / database.txt image lists (formats/image_list.py), read from
    `dataset.list_dir` (default: data_dir), images under data_dir.
  * `image_folder`: one subfolder per class, optionally under train/ test/ database/
    (formats/image_folder.py).
  * `features`: precomputed feature vectors (N, D) and labels, memory-mapped from `.npz` / `.npy`
    files in `data_dir` (formats/features.py; `python -m hashjax.extract_features` writes them).
    Its splits' `images` are float `feature_rows.FeatureRows`, not uint8 images (FEATURE_SOURCES).
Every loader takes (data_dir, lazy) and the dataset options it reads (`OPTIONS`). lazy=True keeps a
tfds split's images as a `lazy_images.LazyImages` over its records, so that each process decodes
only the images it indexes (its share of every batch; labels are read for all records). Image lists
and folders are always lazy (decoded and resized to `dataset.decode_size` when indexed), STL-10's
unlabelled split and the feature vectors are always memory-mapped; digits, IDX files, CIFAR and STL-10's labelled splits are
small and always in memory.
"""

from __future__ import annotations

from collections.abc import Callable
import functools
import gzip
import os
import zlib

import numpy as np

from hashjax.data import lazy_images
from hashjax.data import source_types
from hashjax.data.formats import cifar_python
from hashjax.data.formats import features
from hashjax.data.formats import image_folder
from hashjax.data.formats import image_list
from hashjax.data.formats import stl10_binary

# The types live in source_types (the format readers need them too); these names are the API.
Split = source_types.Split
Source = source_types.Source
DatasetUnavailableError = source_types.DatasetUnavailableError


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
IDX_FILES = {
  'train': ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
  'test': ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'),
}


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
  shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], 'big') for i in range(ndim))
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
        f'Get them with: {how}  (or point --config.dataset.data_dir at a folder holding them)'
      )
    splits[split] = Split(read_idx(img_path)[..., None], read_idx(lbl_path).astype(np.int32))
  return Source(name, splits, 10, f'IDX files in {directory}')


# ---------------------------------------------------------------- tensorflow-datasets
TFDS_NUM_CLASSES = {'cifar10': 10, 'cifar100': 100, 'mnist': 10, 'fashion_mnist': 10, 'stl10': 10, 'svhn_cropped': 10}


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
      f'python -m hashjax.prepare_data {name}' + (f' --data_dir {data_dir}' if data_dir else '')
    ) from e
  if lazy:
    no_images = {'image': tfds.decode.SkipDecoding()}
    splits = {
      s: split_from_records(source, tfds.data_source(name, split=s, data_dir=data_dir, decoders=no_images))
      for s, source in sources.items()
    }
    return Source(
      name,
      splits,
      TFDS_NUM_CLASSES.get(name, info.features['label'].num_classes),
      f'tfds {name} in {data_dir or "~/tensorflow_datasets"}, records read per process',
    )
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
  return Source(
    name,
    splits,
    TFDS_NUM_CLASSES.get(name, info.features['label'].num_classes),
    f'tfds {name} in {data_dir or "~/tensorflow_datasets"}',
  )


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


def _files_then_tfds(name: str, reader) -> Callable[..., Source]:
  """The published files (`reader`: a formats module) when data_dir holds them, else tfds."""

  def load(data_dir: str | None = None, lazy: bool = False, **options) -> Source:
    if options.get('label_type', 'fine') not in cifar_python.LABEL_TYPES:
      raise ValueError(
        f'dataset.label_type={options["label_type"]!r}: valid values are {", ".join(cifar_python.LABEL_TYPES)}'
      )
    location = reader.locate(name, data_dir)
    if location is not None:
      return reader.load(name, location, **options)
    if options.get('label_type', 'fine') != 'fine':  # tfds's cifar100 records carry fine labels only here
      raise ValueError(
        f'{name}: dataset.label_type={options["label_type"]!r} needs {reader.expected(name)} '
        f'in dataset.data_dir (the tensorflow-datasets route reads fine labels)'
      )
    try:
      return load_tfds(name, data_dir, lazy)
    except DatasetUnavailableError as e:
      raise DatasetUnavailableError(
        f'{name}: no {reader.expected(name)} in {data_dir or "dataset.data_dir (unset)"}: download it and '
        f'point --config.dataset.data_dir at it; or a tensorflow-datasets copy: '
        f'python -m hashjax.prepare_data {name}' + (f' --data_dir {data_dir}' if data_dir else '')
      ) from e

  return load


SOURCES: dict[str, Callable[..., Source]] = {
  'digits': load_digits,
  'fashion_mnist': _idx_then_tfds('fashion_mnist'),
  'mnist': _idx_then_tfds('mnist'),
  'cifar10': _files_then_tfds('cifar10', cifar_python),
  'cifar100': _files_then_tfds('cifar100', cifar_python),
  'stl10': _files_then_tfds('stl10', stl10_binary),
  # DeepHash-pytorch's image lists; image_list: any label set in that layout.
  'nus_wide_21': functools.partial(image_list.load, 'nus_wide_21'),
  'coco': functools.partial(image_list.load, 'coco'),
  'imagenet100': functools.partial(image_list.load, 'imagenet100'),
  'mirflickr25k': functools.partial(image_list.load, 'mirflickr25k'),
  'voc2012': functools.partial(image_list.load, 'voc2012'),
  'image_list': functools.partial(image_list.load, 'image_list'),
  'image_folder': functools.partial(image_folder.load, 'image_folder'),
  'features': functools.partial(features.load, 'features'),
}
# The sources whose splits hold float feature vectors (N, D) instead of uint8 images (N, H, W, C):
# no pixel normalisation, no image augmentation, models that take vectors (config/validate.py).
FEATURE_SOURCES = ('features',)

# `dataset.*` config keys a source reads besides data_dir; '' / 0 / None mean unset. Each dataset
# takes only its own, so a key that would be silently ignored fails instead.
OPTIONS = ('list_dir', 'decode_size', 'label_type', 'cache_dir')
_LIST_OPTIONS = ('list_dir', 'decode_size', 'cache_dir')
SOURCE_OPTIONS: dict[str, tuple[str, ...]] = {
  'cifar100': ('label_type',),
  'nus_wide_21': _LIST_OPTIONS,
  'coco': _LIST_OPTIONS,
  'imagenet100': _LIST_OPTIONS,
  'mirflickr25k': _LIST_OPTIONS,
  'voc2012': _LIST_OPTIONS,
  'image_list': _LIST_OPTIONS,
  'image_folder': ('decode_size', 'cache_dir'),
}


def config_options(dataset_config) -> dict:
  """The `OPTIONS` of a `config.dataset` group (keys it lacks count as unset), for `load(..., **options)`."""
  return {key: dataset_config.get(key) for key in OPTIONS}


def load(name: str, data_dir: str | None = None, lazy: bool = False, **options) -> Source:
  """The dataset's own splits.

  Args:
    name: a key of SOURCES.
    data_dir: where its files are (`dataset.data_dir`; None: the source's default place).
    lazy: tfds routes: images decoded when indexed (per-process reads); the other sources ignore it
      (module doc).
    **options: `OPTIONS` (`config_options(config.dataset)`); unset ones ('', 0, None) are dropped.

  Raises:
    ValueError: an unknown name or option, or an option this dataset does not read; bad files
      (the readers' messages name the file and the fix).
    DatasetUnavailableError: the files are not there (the message names what is expected and where
      to get it).
  """
  if name not in SOURCES:
    raise ValueError(f'unknown dataset {name!r}; valid names: {", ".join(sorted(SOURCES))}')
  options = {k: v for k, v in options.items() if v is not None and v != '' and v != 0}
  for key in options:
    if key not in OPTIONS:
      raise ValueError(f'unknown dataset option {key!r}; valid: {", ".join(OPTIONS)}')
    if key not in SOURCE_OPTIONS.get(name, ()):
      users = sorted(n for n, keys in SOURCE_OPTIONS.items() if key in keys)
      raise ValueError(
        f'dataset.{key}={options[key]!r} does not apply to {name} (only to {", ".join(users)}): unset it'
      )
  return SOURCES[name](data_dir, lazy, **options)
