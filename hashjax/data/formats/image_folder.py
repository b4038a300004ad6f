"""A folder of class subfolders of images, for users' own data (as torchvision's ImageFolder).

    DATA_DIR/cat/0001.jpg, DATA_DIR/dog/x.png, ...                         -> one split, 'train'
    DATA_DIR/train/cat/..., DATA_DIR/test/cat/...[, DATA_DIR/database/...]  -> those splits

The class ids are the sorted names of the (train) class folders, 0..K-1; a test or database class
folder must be one of them. Files ending .jpg, .jpeg or .png (any case) are the images, found in
each class folder and its subfolders, in sorted order; other files are ignored. Images are decoded
when indexed (`image_files`, resized to `dataset.decode_size`, default 256); labels are int32 ids.

Protocols: with train/ and test/, all of them (`full`: test queries against database/ if present,
else against train/). With a single 'train' split, only those that need no test split:
`validation` (held-out training images as queries), `random_split`, `per_class`, `cimon`.
"""

from __future__ import annotations

import os

import numpy as np

from hashjax.data import source_types
from hashjax.data.formats import image_files

SPLITS = ('train', 'test', 'database')


def expected(name: str) -> str:
  del name
  return (
    'one subfolder per class of .jpg/.png images in dataset.data_dir, or train/ and test/ (and '
    'optionally database/) folders of such class subfolders'
  )


def _class_folders(root: str) -> list[str]:
  return sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith('.'))


def _images(folder: str) -> list[str]:
  found = []
  for directory, subdirs, files in os.walk(folder):
    subdirs.sort()
    found += [
      os.path.join(directory, f)
      for f in sorted(files)
      if f.lower().endswith(image_files.IMAGE_SUFFIXES) and not f.startswith('.')
    ]
  return found


def _listing(root: str, classes: list[str], split: str) -> tuple[list[str], list[int]]:
  """(image paths, class ids) of one split's folder."""
  paths, labels = [], []
  for folder in _class_folders(root):
    if folder not in classes:
      raise ValueError(
        f'image_folder: {os.path.join(root, folder)} is not a class of the training split '
        f'({", ".join(classes)}): rename or remove it'
      )
    found = _images(os.path.join(root, folder))
    if split == 'train' and not found:
      raise ValueError(
        f'image_folder: class folder {os.path.join(root, folder)} holds no .jpg/.png image: '
        f'add images or remove the folder'
      )
    paths += found
    labels += [classes.index(folder)] * len(found)
  if not paths:
    raise ValueError(f'image_folder: {root} holds no class folder of .jpg/.png images; expected {expected("")}')
  return paths, labels


def _roots(name: str, data_dir: str | None) -> tuple[dict[str, str], list[str]]:
  """({split: its folder}, class names) of an image folder (module doc), its layout checked."""
  if not data_dir or not os.path.isdir(data_dir):
    raise source_types.DatasetUnavailableError(
      f'{name}: set --config.dataset.data_dir to a folder ({data_dir or "unset"} is not one); expected {expected(name)}'
    )
  present = [s for s in SPLITS if os.path.isdir(os.path.join(data_dir, s))]
  has_splits = 'train' in present and 'test' in present
  if present and not has_splits:  # else a lone train/ would silently become a class named 'train'
    raise ValueError(
      f'{name}: {data_dir} has {"/, ".join(present)}/ but not both train/ and test/: add the '
      f'missing one, or point --config.dataset.data_dir at a single folder of class folders'
    )
  roots = {s: os.path.join(data_dir, s) for s in present} if has_splits else {'train': data_dir}
  return roots, _class_folders(roots['train'])


def listing(name: str, data_dir: str | None) -> dict[str, list[str]]:
  """{split: its image paths, in the order `load` reads them}: for checking every file
  (`python -m hashjax.prepare_data image_folder --src DIR`). Raises as `load`."""
  roots, classes = _roots(name, data_dir)
  return {split: _listing(root, classes, split)[0] for split, root in roots.items()}


def load(
  name: str, data_dir: str | None, lazy: bool = False, decode_size: int | None = None, cache_dir: str | None = None
) -> source_types.Source:
  """Reads an image folder (module doc).

  Args:
    name: 'image_folder'.
    data_dir: the folder (module doc).
    lazy: unused: images are always decoded when indexed.
    decode_size: the square size images are resized to when decoded (None: 256).
    cache_dir: keep every decoded image in a file there, decoding it once (image_files.DecodeCache).

  Returns:
    Splits 'train' and, with train/ + test/ subfolders, 'test' (and 'database' if present): images
    a lazy_images.LazyImages of uint8 (N, decode_size, decode_size, 3), labels int32 class ids.

  Raises:
    source_types.DatasetUnavailableError: no data_dir or not a folder.
    ValueError: no images, an empty training class folder, a test/database class that is not a
      training class, a train/ or test/ folder without the other, a bad decode_size.
  """
  del lazy
  size = image_files.check_size(decode_size)
  roots, classes = _roots(name, data_dir)
  splits = {}
  for split, root in roots.items():
    paths, labels = _listing(root, classes, split)
    reader = image_files.ImageFiles(paths, size, lambda i, split=split: f'image_folder {split} split')
    splits[split] = source_types.Split(image_files.lazy(reader, cache_dir), np.asarray(labels, np.int32))
  origin = f'image folder {data_dir} ({len(classes)} classes), decoded at {size}x{size} when read'
  return source_types.Source(name, splits, len(classes), origin)
