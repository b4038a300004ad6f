"""Where a dataset's files are under `dataset.data_dir`: the archive, its extracted folder, or a parent."""

from __future__ import annotations

import os

ARCHIVE_SUFFIXES = ('.tar.gz', '.tgz')


def locate(data_dir: str | None, folder: str, archive: str, marker: str) -> tuple[str, str] | None:
  """Finds a dataset published as `archive` that extracts to `folder/` holding `marker`.

  Args:
    data_dir: the user's `dataset.data_dir`: the archive itself, the extracted folder, or a folder
      holding either (the download folder). None or '': nothing to find.
    folder: the folder the archive extracts to, e.g. 'cifar-10-batches-py'.
    archive: the archive's published file name, e.g. 'cifar-10-python.tar.gz'.
    marker: a file that only the extracted folder holds, e.g. 'test_batch'.

  Returns:
    ('folder', path) or ('archive', path), the folder preferred when both are there; None when
    `data_dir` holds neither (then another route, e.g. tfds, may apply).
  """
  if not data_dir:
    return None
  if os.path.isfile(data_dir):
    return ('archive', data_dir) if data_dir.endswith(ARCHIVE_SUFFIXES) else None
  if os.path.isfile(os.path.join(data_dir, marker)):
    return 'folder', data_dir
  if os.path.isfile(os.path.join(data_dir, folder, marker)):
    return 'folder', os.path.join(data_dir, folder)
  if os.path.isfile(os.path.join(data_dir, archive)):
    return 'archive', os.path.join(data_dir, archive)
  return None
