"""Getting datasets ready before training (`python -m hashjax.prepare_data`'s library).

prepare(name, data_dir): downloads and converts a tensorflow-datasets copy once (needs internet).
check(name, src, list_dir): checks files you downloaded yourself, before any training, so that a
  bad copy fails here with one line instead of mid-epoch:
    * cifar10, cifar100, stl10: the archive (or its extracted folder) reads to the end, holds the
      published number of images, and has the md5 sums that torchvision's loaders check (`PUBLISHED`
      says where each number comes from);
    * mnist, fashion_mnist: the IDX files read and hold the published counts;
    * DeepHash-pytorch lists (nus_wide_21, coco, imagenet100, mirflickr25k, voc2012, image_list) and
      image_folder: every list line parses, the lists hold the published counts where the
      authors' lists fix them, and every listed image exists and decodes; all the missing and
      unreadable ones are counted and the first few named with their list file and line.
  A problem raises one line (ValueError, or source_types.DatasetUnavailableError for files that are
  not there) naming the file and the fix; all well, `check` returns a one-line summary.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import concurrent.futures
import dataclasses
import hashlib
import os
import tarfile
import zlib

from hashjax.data import source_types
from hashjax.data import sources
from hashjax.data.formats import cifar_python
from hashjax.data.formats import image_files
from hashjax.data.formats import image_folder
from hashjax.data.formats import image_list
from hashjax.data.formats import locate as locate_lib
from hashjax.data.formats import stl10_binary


def prepare(name: str, data_dir: str | None = None) -> str:
  """Downloads and converts tfds `name` to array_record files in `data_dir`; returns their folder."""
  if name not in sources.TFDS_NUM_CLASSES:
    raise ValueError(
      f'{name!r} is not a tensorflow-datasets source here; valid names: {", ".join(sorted(sources.TFDS_NUM_CLASSES))}'
      + (f'; to check files you downloaded: python -m hashjax.prepare_data {name} --src PATH' if name in CHECKS else '')
    )
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  builder = tfds.builder(name, data_dir=data_dir, file_format='array_record')
  builder.download_and_prepare()
  return builder.data_dir


@dataclasses.dataclass(frozen=True)
class Published:
  """What is published about a dataset's files, to check a copy against."""

  counts: dict[str, int]  # images per split (CIFAR, STL-10, IDX) or per list file (lists: 'train', 'test', 'database')
  source: str  # where the numbers come from
  fix: str  # what to do about a bad copy
  archive_md5: str = ''  # of the published archive ('' not published)
  file_md5: dict[str, str] = dataclasses.field(default_factory=dict)  # of each extracted file, by name


_CIFAR_FIX = f'download it again from {cifar_python.URL}'
_LISTS = "line counts of DeepHash-pytorch's data/{}/{} lists at ab14068 (github.com/swuxyj/DeepHash-pytorch)"
_LIST_FIX = 'use the published lists, or --config.dataset.name=image_list for lists of your own'
PUBLISHED: dict[str, Published] = {
  'cifar10': Published(
    {'train': 50000, 'test': 10000},
    "counts: the CIFAR page (cs.toronto.edu/~kriz/cifar.html); md5: torchvision's CIFAR10 "
    '(torchvision/datasets/cifar.py: tgz_md5, train_list, test_list)',
    _CIFAR_FIX,
    'c58f30108f718f92721af3b95e74349a',
    {
      'data_batch_1': 'c99cafc152244af753f735de768cd75f',
      'data_batch_2': 'd4bba439e000b95fd0a9bffe97cbabec',
      'data_batch_3': '54ebc095f3ab1f0389bbae665268c751',
      'data_batch_4': '634d18415352ddfa80567beed471001a',
      'data_batch_5': '482c414d41f54cd18b22e5b47cb7c3cb',
      'test_batch': '40351d587109b95175f43aff81a1287e',
    },
  ),
  'cifar100': Published(
    {'train': 50000, 'test': 10000},
    "counts: the CIFAR page (cs.toronto.edu/~kriz/cifar.html); md5: torchvision's CIFAR100 "
    '(torchvision/datasets/cifar.py: tgz_md5, train_list, test_list)',
    _CIFAR_FIX,
    'eb9058c3a382ffc7106e4002c42a8d85',
    {'train': '16019d7e3df5f24257cddd939b257f8d', 'test': 'f0ef6b0ae62326f3e7ffdfab6717acfc'},
  ),
  'stl10': Published(
    {'train': 5000, 'test': 8000, 'unlabelled': 100000},
    "counts: the STL-10 page (cs.stanford.edu/~acoates/stl10/); md5: torchvision's STL10 "
    '(torchvision/datasets/stl10.py: tgz_md5, train_list, test_list)',
    f'download {stl10_binary.ARCHIVE} again from {stl10_binary.URL}',
    '91f7769df0f17e558f3565bffb0c7dfb',
    {
      'train_X.bin': '918c2871b30a85fa023e0c44e0bee87f',
      'train_y.bin': '5a34089d4802c674881badbb80307741',
      'unlabeled_X.bin': '5242ba1fed5e4be9e1e742405eb56ca4',
      'test_X.bin': '7f263ba9f9e0b06b93213547f721ac82',
      'test_y.bin': '36f9794fa4beb8a2c72628de14fa638e',
    },
  ),
  'mnist': Published({'train': 60000, 'test': 10000}, 'the MNIST page', 'download the four IDX files again'),
  'fashion_mnist': Published(
    {'train': 60000, 'test': 10000},
    'the Fashion-MNIST README (github.com/zalandoresearch/fashion-mnist)',
    'sudo apt-get install --reinstall dataset-fashion-mnist, or download the four IDX files again',
  ),
  # DeepHash-pytorch's database.txt of NUS-WIDE-21, COCO and ImageNet-100 are too large for its git
  # history here to show them: their counts are not checked.
  'nus_wide_21': Published({'train': 10500, 'test': 2100}, _LISTS.format('nuswide_21', 'train/test.txt'), _LIST_FIX),
  'coco': Published({'train': 10000, 'test': 5000}, _LISTS.format('coco', 'train/test.txt'), _LIST_FIX),
  'imagenet100': Published({'train': 13000, 'test': 5000}, _LISTS.format('imagenet', 'train/test.txt'), _LIST_FIX),
  'mirflickr25k': Published(
    {'train': 4000, 'test': 1000, 'database': 20000}, _LISTS.format('mirflickr', '*.txt'), _LIST_FIX
  ),
  'voc2012': Published({'train': 4000, 'test': 1000, 'database': 6540}, _LISTS.format('voc2012', '*.txt'), _LIST_FIX),
  'image_list': Published({}, 'your own lists', ''),
  'image_folder': Published({}, 'your own folder', ''),
}

SHOWN = 5  # problems named in a message (all are counted)
_WORKERS = min(32, 4 * (os.cpu_count() or 1))  # image decoding releases the GIL; file reads wait on disk


def md5(path: str) -> str:
  h = hashlib.md5()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 22), b''):
      h.update(block)
  return h.hexdigest()


def _counts(counts: dict[str, int]) -> str:
  return ', '.join(f'{split} {n:,}' for split, n in counts.items())


def _check_counts(name: str, where: str, got: dict[str, int], spec: Published) -> None:
  want = spec.counts
  if any(got.get(split) != n for split, n in want.items()):
    raise ValueError(
      f'{name}: {where} holds {_counts(got) or "no images"}, not the published {_counts(want)} '
      f'({spec.source}): an incomplete or different copy; {spec.fix}'
    )


def _check_md5(name: str, path: str, want: str, what: str, spec: Published) -> None:
  got = md5(path)
  if got != want:
    raise ValueError(
      f'{name}: {path} has md5 {got}, not the published {want} ({what}; {spec.source}): '
      f'a damaged or different download; {spec.fix}'
    )


def _check_cifar(name: str, src: str, spec: Published, list_dir: str | None) -> str:
  del list_dir
  location = cifar_python.locate(name, src)
  if location is None:
    raise source_types.DatasetUnavailableError(f'{name}: no {cifar_python.expected(name)} at {src}')
  kind, path = location
  source = cifar_python.load(name, location)  # every pickle read: a truncated file fails here, named
  _check_counts(name, path, {s: len(split.labels) for s, split in source.splits.items()}, spec)
  if kind == 'archive':
    if spec.archive_md5:
      _check_md5(name, path, spec.archive_md5, 'of the archive', spec)
    hashed = 'md5 as published' if spec.archive_md5 else 'no md5 published'
  else:
    for file, want in spec.file_md5.items():
      if not os.path.isfile(os.path.join(path, file)):
        raise source_types.DatasetUnavailableError(f'{name}: {path} lacks {file}; {spec.fix}')
      _check_md5(name, os.path.join(path, file), want, f'of {file}', spec)
    hashed = f'md5 of {len(spec.file_md5)} files as published' if spec.file_md5 else 'no md5 published'
  return (
    f'{name}: {path} is good: {_counts({s: len(v.labels) for s, v in source.splits.items()})} images, '
    f'{hashed}; train with --config.dataset.data_dir={path}'
  )


class _HashingReader:
  """A binary file wrapper whose md5 covers every byte read (one pass for tar and md5)."""

  def __init__(self, f):
    self.f, self.hash = f, hashlib.md5()

  def read(self, n=-1) -> bytes:
    data = self.f.read(n)
    self.hash.update(data)
    return data

  def finish(self) -> str:
    while self.read(1 << 22):
      pass
    return self.hash.hexdigest()


def _stl10_archive_counts(name: str, path: str, spec: Published) -> tuple[dict[str, int], str]:
  """(images per split from the member sizes, md5) of the STL-10 archive, streamed once."""
  sizes = {}
  try:
    with open(path, 'rb') as raw:
      reader = _HashingReader(raw)
      with tarfile.open(fileobj=reader, mode='r|gz') as tar:
        for member in tar:
          if member.isfile():
            sizes[os.path.basename(member.name)] = member.size
      digest = reader.finish()
  except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
    raise ValueError(
      f'{name}: {path} cannot be read to the end ({type(e).__name__}: {e}): truncated or not a .tar.gz; {spec.fix}'
    ) from None
  counts = {}
  for split, (images_file, labels_file) in {
    **stl10_binary.LABELLED,
    'unlabelled': (stl10_binary.UNLABELLED, ''),
  }.items():
    if images_file not in sizes:
      continue
    n, rest = divmod(sizes[images_file], stl10_binary.IMAGE_BYTES)
    if rest or (labels_file and sizes.get(labels_file) != n):
      raise ValueError(
        f'{name}: {path}: {images_file} has {sizes[images_file]:,} bytes and {labels_file or "no label file"} '
        f'{sizes.get(labels_file, 0):,}: not a whole number of 96x96x3 images with one label byte each; {spec.fix}'
      )
    counts[split] = n
  return counts, digest


def _check_stl10(name: str, src: str, spec: Published, list_dir: str | None) -> str:
  del list_dir
  location = locate_lib.locate(src, stl10_binary.FOLDER, stl10_binary.ARCHIVE, stl10_binary.MARKER)
  if location is None:
    raise source_types.DatasetUnavailableError(
      f'{name}: no {stl10_binary.ARCHIVE} or {stl10_binary.expected(name)} at {src}'
    )
  kind, path = location
  if kind == 'archive':
    counts, digest = _stl10_archive_counts(name, path, spec)
    _check_counts(name, path, counts, spec)
    if spec.archive_md5 and digest != spec.archive_md5:
      raise ValueError(
        f'{name}: {path} has md5 {digest}, not the published {spec.archive_md5} (of the archive; '
        f'{spec.source}): a damaged or different download; {spec.fix}'
      )
    parent = os.path.dirname(os.path.abspath(path))
    return (
      f'{name}: {path} is good: {_counts(counts)} images, '
      f'{"md5 as published" if spec.archive_md5 else "no md5 published"}; extract it once '
      f'(tar xzf {path} -C {parent}) and train with --config.dataset.data_dir={os.path.join(parent, stl10_binary.FOLDER)}'
    )
  source = stl10_binary.load(name, location)  # sizes and labels checked, naming the file
  counts = {s: len(split.labels) for s, split in source.splits.items()}
  _check_counts(name, path, counts, spec)
  for file, want in spec.file_md5.items():
    _check_md5(name, os.path.join(path, file), want, f'of {file}', spec)
  return (
    f'{name}: {path} is good: {_counts(counts)} images, md5 of {len(spec.file_md5)} files as published; '
    f'train with --config.dataset.data_dir={path}'
  )


def _check_idx(name: str, src: str, spec: Published, list_dir: str | None) -> str:
  del list_dir
  source = sources.load_idx(name, src)  # truncated or malformed files fail here, named
  counts = {s: len(split.labels) for s, split in source.splits.items()}
  _check_counts(name, src, counts, spec)
  return f'{name}: {src} is good: {_counts(counts)} images; train with --config.dataset.data_dir={src}'


def _find_bad_images(paths: Sequence[str]) -> tuple[list[int], list[tuple[int, str]]]:
  """(indices of missing files, [(index, why)] of files that do not decode), in order."""
  gone = image_files.missing(paths)
  absent = set(gone)
  present = [i for i in range(len(paths)) if i not in absent]
  with concurrent.futures.ThreadPoolExecutor(_WORKERS) as pool:
    reasons = pool.map(image_files.unreadable, [paths[i] for i in present], chunksize=64)
    bad = [(i, why) for i, why in zip(present, reasons) if why is not None]
  return gone, bad


def _report_images(name: str, root: str, paths: list[str], where: Callable[[int], str], fix: str) -> None:
  """Raises one line counting the missing and unreadable files of `paths` and naming the first few."""
  gone, bad = _find_bad_images(paths)
  if not gone and not bad:
    return
  parts = []
  if gone:
    shown = '; '.join(where(i) for i in gone[:SHOWN])
    parts.append(f'{len(gone):,} missing (the first: {shown}{"; ..." if len(gone) > SHOWN else ""})')
  if bad:
    shown = '; '.join(f'{where(i)} ({why})' for i, why in bad[:SHOWN])
    parts.append(f'{len(bad):,} cannot be decoded (the first: {shown}{"; ..." if len(bad) > SHOWN else ""})')
  raise ValueError(f'{name}: of the {len(paths):,} images under {root}, {" and ".join(parts)}: {fix}')


def _check_lists(name: str, src: str, spec: Published, list_dir: str | None) -> str:
  if not os.path.isdir(src):
    raise source_types.DatasetUnavailableError(
      f'{name}: --src {src} is not a folder: give the folder the listed image paths are relative to'
    )
  list_dir = list_dir or src
  # DeepHash-pytorch publishes all three lists of its datasets; lists of your own need train and test.
  required = image_list.REQUIRED if name == 'image_list' else tuple(image_list.LIST_FILES)
  lists = image_list.read_lists(name, list_dir, required)  # every line parsed: a bad one fails, named
  counts = {split: len(parsed.paths) for split, (_, parsed) in lists.items()}
  _check_counts(name, list_dir, counts, spec)
  paths, places = [], []
  for list_path, parsed in lists.values():
    paths += [os.path.join(src, p) for p in parsed.paths]
    places += [(list_path, line, p) for line, p in zip(parsed.lines, parsed.paths)]

  def where(i):
    list_path, line, rel = places[i]
    return f'{list_path} line {line} {rel!r}'

  _report_images(
    name,
    src,
    paths,
    where,
    'give --src (--config.dataset.data_dir) as the folder the listed paths are relative to, and '
    'replace the unreadable files or remove their lines',
  )
  published = f' ({_counts(spec.counts)} as published)' if spec.counts else ''
  return (
    f'{name}: {list_dir} lists {_counts(counts)} images{published}, every one found under {src} and decoded; '
    f'train with --config.dataset.data_dir={src}'
    + (f' --config.dataset.list_dir={list_dir}' if list_dir != src else '')
  )


def _check_folder(name: str, src: str, spec: Published, list_dir: str | None) -> str:
  del spec, list_dir
  listing = image_folder.listing(name, src)  # the layout checked as the loader does
  paths = [p for split_paths in listing.values() for p in split_paths]
  _report_images(name, src, paths, lambda i: repr(paths[i]), 'replace or remove those files')
  return (
    f'{name}: {src} holds {_counts({s: len(p) for s, p in listing.items()})} images, every one decoded; '
    f'train with --config.dataset.data_dir={src}'
  )


CHECKS: dict[str, Callable[[str, str, Published, str | None], str]] = {
  'cifar10': _check_cifar,
  'cifar100': _check_cifar,
  'stl10': _check_stl10,
  'mnist': _check_idx,
  'fashion_mnist': _check_idx,
  **{name: _check_lists for name in image_list.DATASETS},
  'image_folder': _check_folder,
}


def check(name: str, src: str, list_dir: str | None = None, published: Published | None = None) -> str:
  """Checks a downloaded copy of dataset `name` (module doc); returns a one-line summary.

  Args:
    name: a key of CHECKS.
    src: the archive or its extracted folder (cifar10, cifar100, stl10), the folder of the IDX files,
      or the image folder (lists: the folder the listed paths are relative to).
    list_dir: image lists: the folder of train.txt / test.txt / database.txt (None: src).
    published: what to check against (None: PUBLISHED[name]; tests pass their own).

  Raises:
    ValueError: a truncated or malformed file, counts or an md5 other than the published ones, a bad
      list line, missing or unreadable images: one line naming the file (and line) and the fix.
    source_types.DatasetUnavailableError: the expected files are not at `src`.
  """
  if name not in CHECKS:
    raise ValueError(f'prepare_data --src: unknown dataset {name!r}; valid names: {", ".join(sorted(CHECKS))}')
  if list_dir and CHECKS[name] is not _check_lists:
    raise ValueError(f'--list_dir applies to the image lists only ({", ".join(image_list.DATASETS)}), not {name}')
  return CHECKS[name](name, src, PUBLISHED[name] if published is None else published, list_dir)
