"""DeepHash-pytorch's image lists (https://github.com/swuxyj/DeepHash-pytorch, data/<name>/*.txt).

A dataset is three list files, `train.txt`, `test.txt` and `database.txt` (the last optional here),
in `dataset.list_dir` (default: `dataset.data_dir`). Each line is an image path relative to
`dataset.data_dir` (absolute paths are used as they are), then one 0/1 per label, separated by
spaces:

    images/83796_799247112_276c55a843_m.jpg 1 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0

so a DeepHash-pytorch user's data folder and list files work unchanged (DeepHash-pytorch's own
`data_path` prefix is our data_dir). Splits 'train', 'test', 'database' are the lists: the `full`
protocol queries with test.txt against database.txt and trains on train.txt. (DeepHash-pytorch's
train.txt is drawn from its database.txt, so protocols that pool every split, e.g. random_split,
see those images twice.)

Labels are read at load time: multi-hot uint8 (N, C) 0/1 rows (relevant = shares a label), except
`imagenet100`, whose one-hot rows become int32 class ids. Images are decoded when indexed
(`image_files`, resized to `dataset.decode_size`, default 256); every listed file is checked to
exist at load time (one stat each).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from hashjax.data import source_types
from hashjax.data.formats import image_files

URL = 'https://github.com/swuxyj/DeepHash-pytorch/tree/master/data'


@dataclasses.dataclass(frozen=True)
class ListDataset:
  num_labels: int | None  # None: as many as the list file's first line has
  deephash_folder: str  # DeepHash-pytorch's data/<folder>
  single_label: bool = False  # one-hot rows: stored as class ids


DATASETS = {
  'nus_wide_21': ListDataset(21, 'nuswide_21'),
  'coco': ListDataset(80, 'coco'),
  'imagenet100': ListDataset(100, 'imagenet', single_label=True),
  'mirflickr25k': ListDataset(38, 'mirflickr'),
  'voc2012': ListDataset(20, 'voc2012'),
  'image_list': ListDataset(None, '<name>'),  # any label set, in the same file layout
}
LIST_FILES = {'train': 'train.txt', 'test': 'test.txt', 'database': 'database.txt'}
REQUIRED = ('train', 'test')  # without database.txt the training set is the database (protocols.full)


def expected(name: str) -> str:
  folder = DATASETS[name].deephash_folder
  return (
    f"train.txt, test.txt and database.txt (DeepHash-pytorch's data/{folder}/*.txt lists, "
    f'{URL}/{folder}) in dataset.list_dir (default: dataset.data_dir), with the images they name '
    f'under dataset.data_dir'
  )


@dataclasses.dataclass(frozen=True)
class _List:
  paths: list[str]  # as written in the file
  labels: np.ndarray  # uint8 (N, C) 0/1
  lines: np.ndarray  # each row's line number in the file (1-based; blank lines are skipped)


def read_list(path: str, name: str, num_labels: int | None, first: str = '') -> _List:
  """Parses one list file; num_labels None: the first line's count (`first` names where a count came
  from, for messages)."""
  paths, rows, lines = [], [], []
  with open(path, encoding='utf-8') as f:
    for n, line in enumerate(f, 1):
      parts = line.split()
      if not parts:
        continue
      values = parts[1:]
      if num_labels is None:
        num_labels, first = len(values), f'line {n} of {path}'
      if len(values) != num_labels or not values:
        if not values:
          problem = 'no labels after the image path'
        elif DATASETS[name].num_labels is not None:
          problem = (
            f'{len(values)} labels, but {name} has {num_labels} (one 0/1 per label after the image '
            f'path); for another label set use --config.dataset.name=image_list'
          )
        else:
          problem = f'{len(values)} labels, but {first} has {num_labels}'
        raise ValueError(f'{name}: {path} line {n}: {problem}')
      digits = ''.join(values)
      if len(digits) != num_labels or digits.strip('01'):  # every value a single 0 or 1
        raise ValueError(f'{name}: {path} line {n}: labels must be 0 or 1, got {" ".join(values)!r}; fix the line')
      paths.append(parts[0])
      rows.append(digits)
      lines.append(n)
  if not paths:
    raise ValueError(f'{name}: {path} lists no image: expected lines "relative/path.jpg 0 1 0 ..."')
  labels = (np.frombuffer(''.join(rows).encode('ascii'), np.uint8) - ord('0')).reshape(len(paths), num_labels)
  return _List(paths, labels, np.asarray(lines, np.int32))


def read_lists(name: str, list_dir: str, required: tuple[str, ...] = REQUIRED) -> dict[str, tuple[str, _List]]:
  """{split: (list file path, parsed list)} of the LIST_FILES in `list_dir` (those of `required` must
  be there), every line checked: the label count (the dataset's, else the first line's), 0/1 values,
  and for a single-label dataset exactly one 1.

  Raises:
    source_types.DatasetUnavailableError: a required list file is missing.
    ValueError: a malformed line, naming the file, the line and the fix.
  """
  spec = DATASETS[name]
  files = {split: os.path.join(list_dir, f) for split, f in LIST_FILES.items()}
  absent = [files[s] for s in required if not os.path.isfile(files[s])]
  if absent:
    raise source_types.DatasetUnavailableError(f'{name}: {" and ".join(absent)} not found; expected {expected(name)}')
  num_labels, first, lists = spec.num_labels, '', {}
  for split, path in files.items():
    if not os.path.isfile(path):
      continue
    parsed = read_list(path, name, num_labels, first)
    num_labels, first = parsed.labels.shape[1], first or f'line {parsed.lines[0]} of {path}'
    if spec.single_label:
      bad = np.flatnonzero(parsed.labels.sum(axis=1) != 1)
      if len(bad):
        raise ValueError(
          f'{name}: {path} line {parsed.lines[bad[0]]}: {parsed.labels[bad[0]].sum()} '
          f'labels set, but {name} is single-label (exactly one 1 per line); for '
          f'multi-label lists use --config.dataset.name=image_list'
        )
    lists[split] = path, parsed
  return lists


def load(
  name: str,
  data_dir: str | None,
  lazy: bool = False,
  list_dir: str | None = None,
  decode_size: int | None = None,
  cache_dir: str | None = None,
) -> source_types.Source:
  """Reads a DeepHash-pytorch list dataset (module doc).

  Args:
    name: a key of DATASETS; a named dataset's lists must have its label count.
    data_dir: the folder the listed image paths are relative to.
    lazy: unused: images are always decoded when indexed (a 200k-image list never is whole).
    list_dir: the folder of train.txt / test.txt / database.txt (None: data_dir).
    decode_size: the square size images are resized to when decoded (None: 256).
    cache_dir: keep every decoded image in a file there, decoding it once (image_files.DecodeCache).

  Returns:
    Splits 'train', 'test' and, with database.txt, 'database': images a lazy_images.LazyImages of
    uint8 (N, decode_size, decode_size, 3); labels uint8 (N, C) multi-hot, or int32 class ids for
    single-label datasets. num_classes = C.

  Raises:
    source_types.DatasetUnavailableError: no data_dir, missing list files, or listed images that are
      not there (the first one named, with its list file and line).
    ValueError: a malformed line (wrong label count for the dataset or against the other lines, not
      0/1, not one-hot for a single-label dataset), a bad decode_size.
  """
  del lazy
  spec, size = DATASETS[name], image_files.check_size(decode_size)
  if not data_dir:
    raise source_types.DatasetUnavailableError(
      f'{name}: set --config.dataset.data_dir to the image folder; expected {expected(name)}'
    )
  list_dir = list_dir or data_dir
  lists = read_lists(name, list_dir)
  files = {split: path for split, (path, _) in lists.items()}
  num_labels = next(iter(lists.values()))[1].labels.shape[1]
  splits = {}
  for split, (list_path, parsed) in lists.items():
    full_paths = [os.path.join(data_dir, p) for p in parsed.paths]
    gone = image_files.missing(full_paths)
    if gone:
      raise source_types.DatasetUnavailableError(
        f'{name}: {len(gone)} of the {len(full_paths)} images listed in {list_path} are missing, '
        f'the first {parsed.paths[gone[0]]!r} (line {parsed.lines[gone[0]]}) looked for as '
        f'{full_paths[gone[0]]}: set --config.dataset.data_dir to the folder the listed paths are '
        f'relative to (python -m hashjax.prepare_data {name} --src DIR lists every missing or unreadable image)'
      )
    labels = parsed.labels.argmax(axis=1).astype(np.int32) if spec.single_label else parsed.labels

    def where(i, path=list_path, lines=parsed.lines):
      return f'{path} line {lines[i]}'

    reader = image_files.ImageFiles(full_paths, size, where)
    splits[split] = source_types.Split(image_files.lazy(reader, cache_dir), labels)
  origin = (
    f'image lists {", ".join(os.path.basename(files[s]) for s in lists)} in {list_dir}, images under '
    f'{data_dir} decoded at {size}x{size} when read'
  )
  return source_types.Source(name, splits, num_labels, origin)
