"""Readers for the published dataset formats (hashjax/data/formats/): tiny files in each exact layout
(CIFAR python pickles, STL-10 binary, DeepHash-pytorch lists, class folders), read back with exact
pixels and labels, and each kind of bad input failing with one line that names the file and the fix."""

import io
import os
import pickle
import tarfile

import numpy as np
from PIL import Image
import pytest

from hashjax.config import common
from hashjax.data import lazy_images
from hashjax.data import protocols
from hashjax.data import sources
from hashjax.retrieval import codes as codes_lib
from hashjax.retrieval import metrics


def _rng(seed=0):
  return np.random.default_rng(seed)


# ---------------------------------------------------------------- CIFAR python version
def _cifar_pickle(images, **labels) -> bytes:
  """A batch as the published files hold it: bytes keys (pickled by Python 2), channel-planar rows."""
  d = {
    b'batch_label': b'testing batch',
    b'data': images.transpose(0, 3, 1, 2).reshape(len(images), -1),
    b'filenames': [b'img_%d.png' % i for i in range(len(images))],
  }
  d.update({k.encode(): list(v) for k, v in labels.items()})
  return pickle.dumps(d, protocol=2)


def _write_cifar(root, files: dict[str, bytes], folder: str, archive: str | None = None):
  """Writes the files into root/folder, or into the .tar.gz root/archive as folder/NAME (the real member
  names); returns the path."""
  if archive is None:
    os.makedirs(os.path.join(root, folder))
    for name, data in files.items():
      with open(os.path.join(root, folder, name), 'wb') as f:
        f.write(data)
    return os.path.join(root, folder)
  os.makedirs(root, exist_ok=True)
  path = os.path.join(root, archive)
  with tarfile.open(path, 'w:gz') as tar:
    for name, data in files.items():
      info = tarfile.TarInfo(f'{folder}/{name}')
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))
  return path


def _cifar10(rng, sizes=(3, 2), test_size=4):
  """(files, expected train (images, labels), expected test): batches of the given sizes."""
  batches = [(rng.integers(0, 256, (n, 32, 32, 3), np.uint8), rng.integers(0, 10, n)) for n in (*sizes, test_size)]
  files = {f'data_batch_{i + 1}': _cifar_pickle(x, labels=y) for i, (x, y) in enumerate(batches[:-1])}
  files['test_batch'] = _cifar_pickle(*batches[-1][:1], labels=batches[-1][1])
  files['batches.meta'] = pickle.dumps({b'label_names': [b'airplane'] * 10}, protocol=2)
  train = (np.concatenate([x for x, _ in batches[:-1]]), np.concatenate([y for _, y in batches[:-1]]))
  return files, train, batches[-1]


def _check_cifar10(source, train, test):
  assert source.name == 'cifar10' and source.num_classes == 10 and list(source.splits) == ['train', 'test']
  for split, (x, y) in (('train', train), ('test', test)):
    np.testing.assert_array_equal(source.splits[split].images, x)
    np.testing.assert_array_equal(source.splits[split].labels, y)
    assert source.splits[split].labels.dtype == np.int32


def test_cifar10_folder_and_archive_give_the_exact_pixels(tmp_path):
  files, train, test = _cifar10(_rng())
  folder = _write_cifar(str(tmp_path / 'extracted'), files, 'cifar-10-batches-py')
  archive = _write_cifar(str(tmp_path / 'download'), files, 'cifar-10-batches-py', 'cifar-10-python.tar.gz')
  before = sorted(os.listdir(tmp_path / 'download'))
  for data_dir in (folder, str(tmp_path / 'extracted'), archive, str(tmp_path / 'download')):
    _check_cifar10(sources.load('cifar10', data_dir), train, test)
  assert sorted(os.listdir(tmp_path / 'download')) == before  # read from the archive, nothing extracted
  assert 'archive' in sources.load('cifar10', archive).origin


def test_cifar10_reads_every_batch_in_number_order(tmp_path):
  # data_batch_1 .. data_batch_10, of any sizes: data_batch_10 sorts before data_batch_2 as text.
  files, train, test = _cifar10(_rng(1), sizes=(2, 1, 3, 1, 2, 1, 1, 2, 1, 2))
  folder = _write_cifar(str(tmp_path), files, 'cifar-10-batches-py')
  _check_cifar10(sources.load('cifar10', folder), train, test)


def test_cifar100_fine_and_coarse_labels(tmp_path):
  rng = _rng(2)
  x_train = rng.integers(0, 256, (5, 32, 32, 3), np.uint8)
  x_test = rng.integers(0, 256, (3, 32, 32, 3), np.uint8)
  fine = {'train': rng.integers(0, 100, 5), 'test': rng.integers(0, 100, 3)}
  coarse = {'train': rng.integers(0, 20, 5), 'test': rng.integers(0, 20, 3)}
  files = {
    s: _cifar_pickle(x, fine_labels=fine[s], coarse_labels=coarse[s]) for s, x in (('train', x_train), ('test', x_test))
  }
  files['meta'] = pickle.dumps({b'fine_label_names': [], b'coarse_label_names': []}, protocol=2)
  archive = _write_cifar(str(tmp_path), files, 'cifar-100-python', 'cifar-100-python.tar.gz')
  default = sources.load('cifar100', archive)
  coarse_source = sources.load('cifar100', archive, label_type='coarse')
  assert (default.num_classes, coarse_source.num_classes) == (100, 20)
  assert default.num_classes == sources.load('cifar100', archive, label_type='fine').num_classes
  for s, x in (('train', x_train), ('test', x_test)):
    np.testing.assert_array_equal(default.splits[s].images, x)
    np.testing.assert_array_equal(default.splits[s].labels, fine[s])
    np.testing.assert_array_equal(coarse_source.splits[s].labels, coarse[s])
  with pytest.raises(ValueError, match="label_type='superclass': valid values are fine, coarse"):
    sources.load('cifar100', archive, label_type='superclass')


def test_cifar_bad_files_name_the_file_and_the_fix(tmp_path):
  files, _, _ = _cifar10(_rng(3))
  archive = _write_cifar(str(tmp_path), files, 'cifar-10-batches-py', 'cifar-10-python.tar.gz')
  with open(archive, 'rb') as f:
    data = f.read()
  truncated = str(tmp_path / 'cut' / 'cifar-10-python.tar.gz')
  os.makedirs(os.path.dirname(truncated))
  with open(truncated, 'wb') as f:
    f.write(data[: len(data) // 2])
  with pytest.raises(ValueError, match=f'{truncated}: .*truncated.*download cifar-10-python.tar.gz again'):
    sources.load('cifar10', truncated)

  def folder_with(name, changes):
    d = pickle.loads(files['test_batch'], encoding='bytes')
    d.update(changes)
    return _write_cifar(
      str(tmp_path / name), {**files, 'test_batch': pickle.dumps(d, protocol=2)}, 'cifar-10-batches-py'
    )

  rows = folder_with('rows', {b'data': np.zeros((4, 3000), np.uint8)})
  with pytest.raises(ValueError, match=r'test_batch: data is uint8 \(4, 3000\), expected uint8 \(N, 3072\)'):
    sources.load('cifar10', rows)
  with pytest.raises(ValueError, match='test_batch: 4 images but 3 labels'):
    sources.load('cifar10', folder_with('labels', {b'labels': [1, 2, 3]}))
  with pytest.raises(ValueError, match='test_batch: labels span 0..12, expected 0..9'):
    sources.load('cifar10', folder_with('range', {b'labels': [0, 1, 2, 12]}))
  gap = {k: v for k, v in files.items() if k != 'data_batch_1'}
  with pytest.raises(ValueError, match=r'data_batch_\[2\] \(a gap\)'):
    sources.load('cifar10', _write_cifar(str(tmp_path / 'gap'), gap, 'cifar-10-batches-py'))

  class Evil:
    def __reduce__(self):
      return (os.system, ('touch ' + str(tmp_path / 'pwned'),))

  evil_batch = pickle.dumps({b'data': Evil()}, protocol=2)
  evil = _write_cifar(str(tmp_path / 'evil'), {**files, 'test_batch': evil_batch}, 'cifar-10-batches-py')
  with pytest.raises(ValueError, match='cannot unpickle .*is not something a CIFAR pickle holds'):
    sources.load('cifar10', evil)
  assert not os.path.exists(tmp_path / 'pwned')


def test_missing_published_files_name_them_and_the_download(tmp_path):
  with pytest.raises(sources.DatasetUnavailableError) as e:
    sources.load('cifar10', str(tmp_path))
  message = str(e.value)
  assert '\n' not in message
  for part in (
    'cifar-10-python.tar.gz',
    'cifar-10-batches-py/',
    'the CIFAR-10 python version',
    str(tmp_path),
    'python -m hashjax.prepare_data cifar10',
  ):
    assert part in message
  with pytest.raises(
    sources.DatasetUnavailableError, match='stl10_binary/ .STL-10 binary.*python -m hashjax.prepare_data stl10'
  ):
    sources.load('stl10', str(tmp_path))
  with pytest.raises(ValueError, match="label_type='coarse' needs cifar-100-python.tar.gz"):
    sources.load('cifar100', str(tmp_path), label_type='coarse')


# ---------------------------------------------------------------- STL-10 binary
def _stl10_bytes(images):
  """The inverse of the reference reader np.transpose(x.reshape(-1, 3, 96, 96), (0, 3, 2, 1))."""
  return np.ascontiguousarray(np.transpose(images, (0, 3, 2, 1))).tobytes()


def _write_stl10(folder, rng, sizes=(('train', 3), ('test', 2)), unlabelled=4):
  os.makedirs(folder, exist_ok=True)
  expected = {}
  for split, n in sizes:
    x, y = rng.integers(0, 256, (n, 96, 96, 3), np.uint8), rng.integers(1, 11, n).astype(np.uint8)
    with open(os.path.join(folder, f'{split}_X.bin'), 'wb') as f:
      f.write(_stl10_bytes(x))
    y.tofile(os.path.join(folder, f'{split}_y.bin'))
    expected[split] = (x, y.astype(np.int32) - 1)
  if unlabelled:
    x = rng.integers(0, 256, (unlabelled, 96, 96, 3), np.uint8)
    with open(os.path.join(folder, 'unlabeled_X.bin'), 'wb') as f:
      f.write(_stl10_bytes(x))
    expected['unlabelled'] = (x, np.full(unlabelled, -1, np.int32))
  return expected


def test_stl10_column_major_planes_and_a_memory_mapped_unlabelled_split(tmp_path):
  folder = str(tmp_path / 'stl10_binary')
  expected = _write_stl10(folder, _rng(4))
  raw = np.fromfile(os.path.join(folder, 'train_X.bin'), np.uint8)
  np.testing.assert_array_equal(np.transpose(raw.reshape(-1, 3, 96, 96), (0, 3, 2, 1)), expected['train'][0])
  for data_dir in (folder, str(tmp_path)):
    source = sources.load('stl10', data_dir)
    assert list(source.splits) == ['train', 'test', 'unlabelled'] and source.num_classes == 10
    for split, (x, y) in expected.items():
      np.testing.assert_array_equal(np.asarray(source.splits[split].images), x)
      np.testing.assert_array_equal(source.splits[split].labels, y)
  unlabelled = source.splits['unlabelled'].images
  assert isinstance(unlabelled, lazy_images.LazyImages) and not isinstance(unlabelled, np.ndarray)
  np.testing.assert_array_equal(unlabelled[np.array([3, 1])], expected['unlabelled'][0][[3, 1]])
  # Memory-mapped: bytes rewritten in the file after loading show through; nothing was copied.
  new = np.full((1, 96, 96, 3), 7, np.uint8)
  new[0, 5, 60] = (1, 2, 3)
  with open(os.path.join(folder, 'unlabeled_X.bin'), 'r+b') as f:
    f.seek(2 * 96 * 96 * 3)
    f.write(_stl10_bytes(new))
  np.testing.assert_array_equal(unlabelled[2], new[0])
  # The split names of the tfds route: the 'unlabelled' protocol works on them.
  p = protocols.build(source, 'unlabelled', seed=0, train_size=3)
  assert (len(p.train), len(p.query), len(p.database)) == (3, 2, 3) and p.images.shape == (8, 96, 96, 3)


def test_stl10_archive_needs_extracting_and_bad_files_are_named(tmp_path):
  archive = tmp_path / 'stl10_binary.tar.gz'
  archive.write_bytes(b'not read')
  with pytest.raises(
    sources.DatasetUnavailableError, match=f'tar xzf {archive} -C {tmp_path} .*data_dir={tmp_path}/stl10_binary'
  ):
    sources.load('stl10', str(archive))
  expected = _write_stl10(str(tmp_path / 'stl10_binary'), _rng(5), unlabelled=0)
  source = sources.load('stl10', str(archive))  # extracted next to the archive: used
  assert list(source.splits) == ['train', 'test']
  np.testing.assert_array_equal(source.splits['test'].images, expected['test'][0])

  train_x = tmp_path / 'stl10_binary' / 'train_X.bin'
  train_x.write_bytes(train_x.read_bytes()[:-100])
  with pytest.raises(ValueError, match=f'{train_x} has 82,844 bytes, not a whole number of 96x96x3 images.*truncated'):
    sources.load('stl10', str(tmp_path))
  train_x.write_bytes(train_x.read_bytes()[: 2 * 96 * 96 * 3])
  with pytest.raises(ValueError, match='train_y.bin has 3 labels but train_X.bin has 2 images'):
    sources.load('stl10', str(tmp_path))


# ---------------------------------------------------------------- DeepHash-pytorch image lists
def _save(path, array, mode=None, fmt=None):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  image = Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)
  image.save(path, fmt)


def _pil_reference(path, size):
  return np.asarray(Image.open(path).convert('RGB').resize((size, size), Image.Resampling.BILINEAR))


def _write_list(path, rows):
  with open(path, 'w') as f:
    f.writelines(f'{image} {" ".join(str(v) for v in labels)}\n' for image, labels in rows)


def _image_list_dataset(root, rng, width=5, sizes=(('train', 4), ('test', 3), ('database', 6))):
  """Images of mixed formats and sizes under root/images, lists in root/lists; returns the pixel arrays
  written (PNG ones: exact), label rows and paths by split."""
  kinds = [
    ('png', None, (16, 16)),
    ('jpg', None, (40, 30)),
    ('png', 'L', (23, 17)),
    ('png', 'RGBA', (9, 31)),
    ('jpg', 'CMYK', (20, 20)),
    ('PNG', 'P', (12, 12)),
  ]
  written, lists = {}, {}
  for split, n in sizes:
    rows = []
    for i in range(n):
      ext, mode, (h, w) = kinds[(i + len(written)) % len(kinds)]
      rel = f'images/{split}/{i:03d}.{ext}'
      array = rng.integers(0, 256, (h, w, 3), np.uint8)
      _save(os.path.join(root, rel), array, mode, 'JPEG' if ext == 'jpg' else 'PNG')
      written[rel] = array, mode
      rows.append((rel, rng.integers(0, 2, width)))
    lists[split] = rows
  os.makedirs(os.path.join(root, 'lists'), exist_ok=True)
  for split, rows in lists.items():
    _write_list(os.path.join(root, 'lists', f'{split}.txt'), rows)
  return written, lists


def test_image_lists_decode_any_image_lazily_and_keep_multi_hot_labels(tmp_path):
  root = str(tmp_path)
  written, lists = _image_list_dataset(root, _rng(6))
  source = sources.load('image_list', root, list_dir=os.path.join(root, 'lists'), decode_size=16)
  assert list(source.splits) == ['train', 'test', 'database'] and source.num_classes == 5
  for split, rows in lists.items():
    images, labels = source.splits[split].images, source.splits[split].labels
    assert isinstance(images, lazy_images.LazyImages) and images.shape == (len(rows), 16, 16, 3)
    assert labels.dtype == np.uint8 and labels.shape == (len(rows), 5)
    np.testing.assert_array_equal(labels, [y for _, y in rows])
    for i, (rel, _) in enumerate(rows):
      array, mode = written[rel]
      np.testing.assert_array_equal(images[i], _pil_reference(os.path.join(root, rel), 16))
      if mode is None and rel.endswith('png'):  # lossless and already 16x16 or plain RGB: the exact pixels
        want = (
          array
          if array.shape[:2] == (16, 16)
          else np.asarray(Image.fromarray(array).resize((16, 16), Image.Resampling.BILINEAR))
        )
        np.testing.assert_array_equal(images[i], want)
  assert (source.splits['train'].images[0] == written[lists['train'][0][0]][0]).all()  # 16x16 PNG: untouched
  # The default decode size is DeepHash-pytorch's 256 (then the on-device 224 crop).
  default_size = sources.load('image_list', root, list_dir=os.path.join(root, 'lists'))
  assert default_size.splits['test'].images.shape[1:] == (256, 256, 3)

  # `full`: query = test.txt, training set = train.txt, database = database.txt.
  p = protocols.build(source, 'full')
  assert (len(p.query), len(p.train), len(p.database)) == (3, 4, 6)
  np.testing.assert_array_equal(p.labels[p.database], [y for _, y in lists['database']])
  np.testing.assert_array_equal(p.images[p.query[:1]], source.splits['test'].images[:1])
  assert p.description == 'query = test split, database = database split, train = train split'


def test_multi_hot_relevance_is_sharing_a_label(tmp_path):
  root = str(tmp_path)
  rows = [('q.png', [1, 0, 1]), ('a.png', [0, 1, 0]), ('b.png', [1, 0, 0]), ('c.png', [0, 0, 0])]
  for name, _ in rows:
    _save(os.path.join(root, name), np.zeros((4, 4, 3), np.uint8))
  _write_list(os.path.join(root, 'train.txt'), rows[1:])
  _write_list(os.path.join(root, 'test.txt'), rows[:1])
  _write_list(os.path.join(root, 'database.txt'), rows[1:])
  source = sources.load('image_list', root)
  query, db = source.splits['test'].labels, source.splits['database'].labels
  # Hamming distances 0, 1, 2 to a, b, c: only b shares a label with q, at rank 2: AP = 1/2.
  q_codes = codes_lib.pack_codes(np.array([[1, 1, 1, 1]]))
  db_codes = codes_lib.pack_codes(np.array([[1, 1, 1, 1], [1, 1, 1, -1], [1, 1, -1, -1]]))
  assert metrics.mean_average_precision(q_codes, query, db_codes, db, bits=4) == 0.5


def test_named_list_datasets_check_the_label_width_and_imagenet100_stores_class_ids(tmp_path):
  root = str(tmp_path)
  classes = {'train': [3, 99, 0], 'test': [42]}
  for split, ids in classes.items():
    rows = []
    for i, c in enumerate(ids):
      rel = f'val/n{c:08d}/{split}_{i}.JPEG'
      _save(os.path.join(root, rel), np.full((5, 7, 3), c, np.uint8), fmt='JPEG')
      rows.append((rel, np.eye(100, dtype=int)[c]))
    _write_list(os.path.join(root, f'{split}.txt'), rows)
  source = sources.load('imagenet100', root, decode_size=8)
  assert source.num_classes == 100 and 'database' not in source.splits
  np.testing.assert_array_equal(source.splits['train'].labels, [3, 99, 0])
  assert source.splits['train'].labels.dtype == np.int32
  p = protocols.build(source, 'full')  # no database.txt: the training set is the database
  np.testing.assert_array_equal(p.database, p.train)

  with open(os.path.join(root, 'test.txt'), 'a') as f:
    f.write(f'val/n00000042/test_0.JPEG {" ".join(["1"] * 2 + ["0"] * 98)}\n')
  with pytest.raises(ValueError, match=r'test.txt line 2: 2 labels set, but imagenet100 is single-label'):
    sources.load('imagenet100', root)
  with pytest.raises(
    ValueError,
    match=r'nus_wide_21: .*train.txt line 1: 100 labels, but nus_wide_21 has '
    r'21 .*use --config.dataset.name=image_list',
  ):
    sources.load('nus_wide_21', root)


def test_bad_list_lines_and_missing_or_unreadable_images(tmp_path):
  root = str(tmp_path)
  for name in ('a.png', 'b.jpg'):
    _save(os.path.join(root, name), np.zeros((6, 6, 3), np.uint8))
  (tmp_path / 'broken.jpg').write_bytes(b'\xff\xd8\xff\xe0 not really a jpeg')
  good = '\n'.join(['a.png 0 1 0', 'b.jpg 1 1 0', '', 'broken.jpg 0 0 1']) + '\n'
  (tmp_path / 'test.txt').write_text('a.png 1 0 0\n')

  def load_with(train_txt, name='image_list', **options):
    (tmp_path / 'train.txt').write_text(train_txt)
    return sources.load(name, root, **options)

  source = load_with(good)  # an unreadable file is found when decoded, not at load time
  np.testing.assert_array_equal(source.splits['train'].images[:2], np.zeros((2, 256, 256, 3), np.uint8))
  with pytest.raises(ValueError, match=f'{root}/broken.jpg \\({root}/train.txt line 4\\): cannot decode the image'):
    source.splits['train'].images[2]
  with pytest.raises(ValueError, match=r'train.txt line 2: 2 labels, but line 1 of .*train.txt has 3'):
    load_with('a.png 0 1 0\nb.jpg 1 1\n')
  with pytest.raises(ValueError, match=r'image_list: .*test.txt line 1: 3 labels, but line 1 of .*train.txt has 4'):
    load_with('a.png 0 1 0 1\n')
  with pytest.raises(ValueError, match=r"train.txt line 1: labels must be 0 or 1, got '0 2 0'"):
    load_with('a.png 0 2 0\n')
  with pytest.raises(ValueError, match=r'train.txt line 1: no labels after the image path'):
    load_with('a.png\n')
  with pytest.raises(ValueError, match=r'voc2012: .*train.txt line 1: 3 labels, but voc2012 has 20'):
    load_with(good, 'voc2012')
  with pytest.raises(
    sources.DatasetUnavailableError,
    match=r"2 of the 3 images listed in .*train.txt are missing, the first 'gone/c.png' "
    r'\(line 2\) looked for as .*gone/c.png: set --config.dataset.data_dir',
  ):
    load_with('a.png 0 1 0\ngone/c.png 0 0 1\ngone/d.png 1 0 0\n')
  with pytest.raises(ValueError, match='dataset.decode_size must be a positive int'):
    load_with(good, decode_size=-3)
  with pytest.raises(
    sources.DatasetUnavailableError,
    match=r'coco: .*/elsewhere/train.txt and .*/elsewhere/test.txt not found; expected '
    r"train.txt, test.txt and database.txt \(DeepHash-pytorch's "
    r'data/coco/\*.txt lists',
  ):
    sources.load('coco', root, list_dir=str(tmp_path / 'elsewhere'))
  with pytest.raises(sources.DatasetUnavailableError, match='nus_wide_21: set --config.dataset.data_dir'):
    sources.load('nus_wide_21')


# ---------------------------------------------------------------- image folders
def test_image_folder_single_split_and_train_test_database_folders(tmp_path):
  rng = _rng(7)
  flat = tmp_path / 'flat'
  arrays = {}
  for cls, files in (('b_dog', ('x.PNG', 'sub/y.png')), ('a_cat', ('1.png', '2.JPG'))):
    for f in files:
      arrays[f'{cls}/{f}'] = rng.integers(0, 256, (10, 12, 3), np.uint8)
      _save(str(flat / cls / f), arrays[f'{cls}/{f}'], fmt='JPEG' if f.endswith('JPG') else 'PNG')
  (flat / 'a_cat' / 'notes.txt').write_text('not an image')
  source = sources.load('image_folder', str(flat), decode_size=12)
  assert list(source.splits) == ['train'] and source.num_classes == 2
  np.testing.assert_array_equal(source.splits['train'].labels, [0, 0, 1, 1])  # a_cat = 0, b_dog = 1
  order = ['a_cat/1.png', 'a_cat/2.JPG', 'b_dog/x.PNG', 'b_dog/sub/y.png']
  for i, rel in enumerate(order):
    np.testing.assert_array_equal(source.splits['train'].images[i], _pil_reference(str(flat / rel), 12))
  resized = Image.fromarray(arrays['b_dog/x.PNG']).resize((12, 12), Image.Resampling.BILINEAR)
  np.testing.assert_array_equal(source.splits['train'].images[2], np.asarray(resized))  # PNG: exact
  assert len(protocols.build(source, 'validation', query_fraction=0.5).query) == 2
  with pytest.raises(ValueError, match="protocol needs a 'test' split"):
    protocols.build(source, 'full')

  split_dir = tmp_path / 'splits'
  for split, n in (('train', 3), ('test', 1), ('database', 2)):
    for cls in ('cat', 'dog'):
      for i in range(n):
        _save(str(split_dir / split / cls / f'{i}.png'), rng.integers(0, 256, (8, 8, 3), np.uint8))
  source = sources.load('image_folder', str(split_dir), decode_size=8)
  assert {s: len(v.labels) for s, v in source.splits.items()} == {'train': 6, 'test': 2, 'database': 4}
  p = protocols.build(source, 'full')
  assert (len(p.train), len(p.query), len(p.database)) == (6, 2, 4)
  np.testing.assert_array_equal(p.images[p.query[1]], np.asarray(Image.open(split_dir / 'test/dog/0.png')))
  _save(str(split_dir / 'test' / 'cow' / '0.png'), np.zeros((8, 8, 3), np.uint8))
  with pytest.raises(ValueError, match=r'test/cow is not a class of the training split \(cat, dog\)'):
    sources.load('image_folder', str(split_dir))
  os.rename(split_dir / 'test', tmp_path / 'elsewhere')
  with pytest.raises(ValueError, match=r'splits has train/, database/ but not both train/ and test/'):
    sources.load('image_folder', str(split_dir))
  with pytest.raises(sources.DatasetUnavailableError, match='image_folder: set --config.dataset.data_dir'):
    sources.load('image_folder', str(tmp_path / 'nowhere'))


# ---------------------------------------------------------------- options
def test_dataset_options_apply_only_where_they_are_read(tmp_path):
  options = sources.config_options(common.base_config().dataset)
  assert options == {'list_dir': '', 'decode_size': 0, 'label_type': '', 'cache_dir': ''}
  assert sources.load('digits', None, False, **options).name == 'digits'  # unset options are dropped
  with pytest.raises(ValueError, match=r"dataset.label_type='coarse' does not apply to cifar10 \(only to cifar100\)"):
    sources.load('cifar10', str(tmp_path), label_type='coarse')
  with pytest.raises(ValueError, match='dataset.decode_size=224 does not apply to stl10 .*image_folder'):
    sources.load('stl10', str(tmp_path), decode_size=224)
  with pytest.raises(ValueError, match="unknown dataset option 'resize'"):
    sources.load('coco', str(tmp_path), resize=3)
  with pytest.raises(ValueError, match='unknown dataset .*valid names: cifar10, cifar100, coco, digits'):
    sources.load('cifar11')
