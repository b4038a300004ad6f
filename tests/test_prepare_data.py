"""`python -m hashjax.prepare_data NAME --src PATH`: a good copy passes with one line and status 0; every
kind of bad copy (truncated, another md5, other counts, a missing or unreadable listed image, a list
line with the wrong number of labels) fails with one line naming the file (and line), status 2."""

import dataclasses
import io
import os
import tarfile

import numpy as np
import pytest

from hashjax import prepare_data
from hashjax.data import prepare
from tests.test_data_formats import _cifar10
from tests.test_data_formats import _rng
from tests.test_data_formats import _save
from tests.test_data_formats import _write_cifar
from tests.test_data_formats import _write_list
from tests.test_data_formats import _write_stl10


def _run(capsys, *argv):
  """(exit status, stdout lines, stderr lines) of the command."""
  status = prepare_data.main(list(argv))
  out, err = capsys.readouterr()
  return status, out.splitlines(), err.splitlines()


def _fails(capsys, *argv) -> str:
  status, out, err = _run(capsys, *argv)
  assert status == 2 and not out and len(err) == 1, (status, out, err)
  return err[0]


def test_published_numbers_are_torchvisions():
  """The md5 sums the brief quotes, as torchvision's dataset code has them; each entry says its source."""
  assert prepare.PUBLISHED['cifar10'].archive_md5 == 'c58f30108f718f92721af3b95e74349a'
  assert prepare.PUBLISHED['cifar100'].archive_md5 == 'eb9058c3a382ffc7106e4002c42a8d85'
  assert prepare.PUBLISHED['stl10'].archive_md5 == '91f7769df0f17e558f3565bffb0c7dfb'
  assert all(spec.source for spec in prepare.PUBLISHED.values()) and set(prepare.PUBLISHED) == set(prepare.CHECKS)


@pytest.fixture
def cifar(tmp_path, monkeypatch):
  """A tiny CIFAR-10 archive and its extracted folder, published as themselves."""
  files, _, _ = _cifar10(_rng(20))
  archive = _write_cifar(str(tmp_path / 'download'), files, 'cifar-10-batches-py', 'cifar-10-python.tar.gz')
  folder = _write_cifar(str(tmp_path / 'extracted'), files, 'cifar-10-batches-py')
  spec = dataclasses.replace(
    prepare.PUBLISHED['cifar10'],
    counts={'train': 5, 'test': 4},
    archive_md5=prepare.md5(archive),
    file_md5={name: prepare.md5(os.path.join(folder, name)) for name in ('data_batch_1', 'test_batch')},
  )
  monkeypatch.setitem(prepare.PUBLISHED, 'cifar10', spec)
  return archive, folder, spec


def test_cifar_good_archive_and_folder_pass(cifar, capsys):
  archive, folder, _ = cifar
  for src in (archive, os.path.dirname(archive), folder):
    status, out, err = _run(capsys, 'cifar10', '--src', src)
    assert status == 0 and len(out) == 1 and not err
    assert 'is good: train 5, test 4 images, md5' in out[0] and '--config.dataset.data_dir=' in out[0]


def test_cifar_bad_copies_name_the_file(cifar, capsys, monkeypatch, tmp_path):
  archive, folder, spec = cifar
  data = open(archive, 'rb').read()
  cut = tmp_path / 'cut' / 'cifar-10-python.tar.gz'
  cut.parent.mkdir()
  cut.write_bytes(data[: len(data) // 2])
  line = _fails(capsys, 'cifar10', '--src', str(cut))
  assert (
    f'{cut}: cannot read the archive' in line
    and 'truncated' in line
    and 'download cifar-10-python.tar.gz again' in line
  )

  monkeypatch.setitem(prepare.PUBLISHED, 'cifar10', dataclasses.replace(spec, archive_md5='0' * 32))
  line = _fails(capsys, 'cifar10', '--src', archive)
  assert f'{archive} has md5 {spec.archive_md5}, not the published {"0" * 32}' in line
  assert "torchvision's CIFAR10" in line  # where the number comes from

  middle = os.path.getsize(os.path.join(folder, 'test_batch')) // 2
  with open(os.path.join(folder, 'test_batch'), 'r+b') as f:  # same size, one pixel changed
    f.seek(middle)
    byte = f.read(1)
    f.seek(middle)
    f.write(bytes([byte[0] ^ 1]))
  monkeypatch.setitem(prepare.PUBLISHED, 'cifar10', spec)
  assert f'{folder}/test_batch has md5 ' in _fails(capsys, 'cifar10', '--src', folder)

  monkeypatch.setitem(prepare.PUBLISHED, 'cifar10', dataclasses.replace(spec, counts={'train': 50000, 'test': 10000}))
  line = _fails(capsys, 'cifar10', '--src', archive)
  assert f'{archive} holds train 5, test 4, not the published train 50,000, test 10,000' in line

  line = _fails(capsys, 'cifar10', '--src', str(tmp_path / 'empty'))
  assert 'no cifar-10-python.tar.gz or cifar-10-batches-py/' in line


def test_stl10_archive_and_folder(tmp_path, capsys, monkeypatch):
  folder = str(tmp_path / 'x' / 'stl10_binary')
  _write_stl10(folder, _rng(21))
  archive = str(tmp_path / 'stl10_binary.tar.gz')
  with tarfile.open(archive, 'w:gz') as tar:
    tar.add(folder, arcname='stl10_binary')
  names = ('train_X.bin', 'train_y.bin', 'test_X.bin', 'test_y.bin', 'unlabeled_X.bin')
  spec = dataclasses.replace(
    prepare.PUBLISHED['stl10'],
    counts={'train': 3, 'test': 2, 'unlabelled': 4},
    archive_md5=prepare.md5(archive),
    file_md5={n: prepare.md5(os.path.join(folder, n)) for n in names},
  )
  monkeypatch.setitem(prepare.PUBLISHED, 'stl10', spec)
  for src in (archive, folder):
    status, out, _ = _run(capsys, 'stl10', '--src', src)
    assert status == 0 and len(out) == 1 and 'is good: train 3, test 2, unlabelled 4 images' in out[0]
  assert 'tar xzf' in _run(capsys, 'stl10', '--src', archive)[1][0]

  data = open(archive, 'rb').read()
  with open(archive, 'wb') as f:
    f.write(data[:-300])
  assert f'{archive} cannot be read to the end' in _fails(capsys, 'stl10', '--src', archive)
  train_x = os.path.join(folder, 'train_X.bin')
  with open(train_x, 'r+b') as f:
    f.truncate(os.path.getsize(train_x) - 10)
  line = _fails(capsys, 'stl10', '--src', folder)
  assert f'{train_x} has 82,934 bytes, not a whole number of 96x96x3 images' in line


def _lists(root, rows_by_split):
  for split, rows in rows_by_split.items():
    _write_list(os.path.join(root, f'{split}.txt'), rows)


def test_image_lists_every_image_found_and_decoded(tmp_path, capsys, monkeypatch):
  root = str(tmp_path)
  rng = _rng(22)
  rows = {}
  for split, n in (('train', 4), ('test', 2), ('database', 5)):
    rows[split] = []
    for i in range(n):
      rel = f'img/{split}{i}.{"jpg" if i % 2 else "png"}'
      _save(os.path.join(root, rel), rng.integers(0, 256, (9, 7, 3), np.uint8), fmt='JPEG' if i % 2 else 'PNG')
      rows[split].append((rel, [1, 0, 1]))
  _lists(root, rows)
  status, out, err = _run(capsys, 'image_list', '--src', root)
  assert (
    status == 0
    and not err
    and out
    == [
      f'image_list: {root} lists train 4, test 2, database 5 images, every one found under {root} and decoded; '
      f'train with --config.dataset.data_dir={root}'
    ]
  )
  # The published counts of a named dataset (here a 3-label one, as if published so).
  spec = dataclasses.replace(prepare.PUBLISHED['voc2012'], counts={'train': 4, 'test': 2, 'database': 5})
  monkeypatch.setitem(prepare.PUBLISHED, 'image_list', spec)
  assert _run(capsys, 'image_list', '--src', root)[1][0].endswith(
    f'(train 4, test 2, database 5 as published), every one found under {root} and decoded; '
    f'train with --config.dataset.data_dir={root}'
  )
  monkeypatch.setitem(prepare.PUBLISHED, 'image_list', dataclasses.replace(spec, counts={'train': 4000, 'test': 2}))
  line = _fails(capsys, 'image_list', '--src', root)
  assert f'{root} holds train 4, test 2, database 5, not the published train 4,000, test 2' in line
  assert "DeepHash-pytorch's data/voc2012" in line and 'image_list for lists of your own' in line
  monkeypatch.undo()

  # Missing and unreadable images: all counted, the first few named with list file and line.
  (tmp_path / 'img' / 'train1.jpg').write_bytes(open(tmp_path / 'img' / 'train1.jpg', 'rb').read()[:300])  # truncated
  (tmp_path / 'img' / 'test0.png').write_bytes(b'not an image')
  os.remove(tmp_path / 'img' / 'database3.jpg')
  extra = rows['train'] + [(f'gone/{i}.jpg', [0, 1, 0]) for i in range(7)]
  _lists(root, {'train': extra})
  line = _fails(capsys, 'image_list', '--src', root)
  assert f"of the 18 images under {root}, 8 missing (the first: {root}/train.txt line 5 'gone/0.jpg'" in line
  assert "train.txt line 9 'gone/4.jpg'; ..." in line and 'gone/5.jpg' not in line  # 5 named, then '...'
  assert 'and 2 cannot be decoded (the first: ' in line
  assert f"{root}/train.txt line 2 'img/train1.jpg' (OSError: " in line  # truncated
  assert f"{root}/test.txt line 1 'img/test0.png' (UnidentifiedImageError" in line
  assert 'give --src (--config.dataset.data_dir) as the folder the listed paths are relative to' in line


def test_image_list_lines_and_files(tmp_path, capsys):
  root = str(tmp_path)
  _save(os.path.join(root, 'a.png'), np.zeros((4, 4, 3), np.uint8))
  _lists(root, {'train': [('a.png', [1] * 21), ('a.png', [0] * 20)], 'test': [('a.png', [1] * 21)]})
  (tmp_path / 'database.txt').write_text('a.png ' + ' '.join(['0'] * 21) + '\n')
  line = _fails(capsys, 'nus_wide_21', '--src', root)
  assert f'{root}/train.txt line 2: 20 labels, but nus_wide_21 has 21' in line
  os.remove(tmp_path / 'database.txt')
  line = _fails(capsys, 'nus_wide_21', '--src', root)  # DeepHash-pytorch publishes all three lists
  assert f'{root}/database.txt not found' in line
  lists = tmp_path / 'lists'
  lists.mkdir()
  _lists(str(lists), {'train': [('a.png', [1, 0])], 'test': [('a.png', [0, 1])]})
  status, out, _ = _run(capsys, 'image_list', '--src', root, '--list_dir', str(lists))
  assert status == 0 and out[0].endswith(f'--config.dataset.data_dir={root} --config.dataset.list_dir={lists}')
  assert '--list_dir applies to the image lists only' in _fails(capsys, 'cifar10', '--src', root, '--list_dir', root)
  assert "unknown dataset 'cifar11'; valid names: cifar10, cifar100, coco" in _fails(capsys, 'cifar11', '--src', root)


def test_image_folder(tmp_path, capsys):
  for cls in ('cat', 'dog'):
    for i in range(2):
      _save(str(tmp_path / cls / f'{i}.png'), np.zeros((5, 5, 3), np.uint8))
  status, out, _ = _run(capsys, 'image_folder', '--src', str(tmp_path))
  assert status == 0 and out == [
    f'image_folder: {tmp_path} holds train 4 images, every one decoded; train with --config.dataset.data_dir={tmp_path}'
  ]
  (tmp_path / 'dog' / '1.png').write_bytes(b'\x89PNG broken')
  line = _fails(capsys, 'image_folder', '--src', str(tmp_path))
  assert f"1 cannot be decoded (the first: '{tmp_path}/dog/1.png' (" in line


def test_tfds_route_is_kept(capsys):
  """Without --src the command prepares a tensorflow-datasets copy, as before (not run here: no internet)."""
  line = _fails(capsys, 'coco')
  assert "'coco' is not a tensorflow-datasets source here" in line and 'prepare_data coco --src PATH' in line
  assert '--list_dir needs --src' in _fails(capsys, 'cifar10', '--list_dir', 'x')


def test_a_tar_member_stream_hashes_every_byte(tmp_path):
  """The STL-10 archive is read once for its members and its md5: the same md5 as reading the file."""
  path = tmp_path / 'x.tar.gz'
  with tarfile.open(path, 'w:gz') as tar:
    payload = os.urandom(100_000)
    info = tarfile.TarInfo('stl10_binary/other.bin')
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))
  counts, digest = prepare._stl10_archive_counts('stl10', str(path), prepare.PUBLISHED['stl10'])  # pylint: disable=protected-access
  assert counts == {} and digest == prepare.md5(str(path))
