"""Image files (JPEG, PNG, ...) decoded with PIL when indexed, for the image_list and image_folder formats.

A dataset of image files is a `lazy_images.LazyImages` over an `ImageFiles` reader: nothing is decoded
at load time; indexing decodes just those files. Each file is converted to RGB (grey, palette, CMYK
and RGBA images alike: PIL's `convert('RGB')`, as torchvision's and DeepHash-pytorch's loaders) and
resized to a fixed square `size` x `size` with PIL's bilinear filter, so images of any size batch
together. The network's own input size and the augmentation (e.g. a 224 crop of the 256 decode) are
applied later, on the device (`image_size`, `augment`).

Unlike DeepHash-pytorch's `transforms.Resize(256)`, which scales the shorter side to 256 and keeps
the aspect ratio, the resize here is to a square (the aspect ratio changes): batches need one shape.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import hashlib
import os

import numpy as np
from PIL import Image

from hashjax.data import lazy_images

DEFAULT_SIZE = 256  # DeepHash-pytorch's resize_size, before its 224 crop
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png')  # what image_folder picks up (any case)


def decode(path: str, size: int) -> np.ndarray:
  """uint8 (size, size, 3): the file decoded by PIL, converted to RGB and resized (bilinear) if needed."""
  with Image.open(path) as image:
    image.load()
    # convert() copies even an RGB image; most JPEGs are RGB already, so skip that copy (same pixels).
    image = image if image.mode == 'RGB' else image.convert('RGB')
  if image.size != (size, size):
    image = image.resize((size, size), Image.Resampling.BILINEAR)
  return np.asarray(image, np.uint8)


class ImageFiles:
  """read(i) -> uint8 (size, size, 3), file `paths[i]` decoded (`decode`); a file that cannot be decoded
  raises a ValueError naming it, `where(i)` (e.g. its list file and line) and the fix."""

  def __init__(self, paths: Sequence[str], size: int, where: Callable[[int], str]):
    self.paths, self.size, self.where = paths, size, where

  def __len__(self) -> int:
    return len(self.paths)

  def __call__(self, i) -> np.ndarray:
    path = self.paths[i]
    try:
      return decode(path, self.size)
    # PIL raises OSError for truncated data, SyntaxError for some malformed headers.
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
      raise ValueError(
        f'{path} ({self.where(i)}): cannot decode the image ({type(e).__name__}: {e}); '
        f'replace the file or remove it from the dataset'
      ) from None


class DecodeCache:
  """read(i) of an `ImageFiles` reader, each image decoded once: the first read decodes and stores it
  in a file of `cache_dir`, every later one (a later epoch, another process) copies it from there.

  The file is a uint8 (N, size, size, 3) array plus an (N,) flag array (`np.memmap`, created sparse:
  disk is used as images are decoded), named by a hash of the image paths and the size, so another
  dataset or decode size gets its own. Processes that decode the same image write the same bytes,
  and an image's flag is set after its bytes, so concurrent workers share one cache safely. Changing
  the image files on disk does not invalidate it: delete the cache after editing a dataset. Each
  process opens the memory maps on its first read (the object pickles to grain's workers without
  them). Use a local disk: ImageNet-100 at 256 px is ~25 GB.
  """

  def __init__(self, reader: ImageFiles, cache_dir: str):
    self.reader = reader
    key = hashlib.sha1(('\n'.join(reader.paths) + f'\n{reader.size}').encode()).hexdigest()[:16]
    stem = os.path.join(cache_dir, f'decoded_{key}_{len(reader)}x{reader.size}')
    self.paths = (stem + '.u8', stem + '.done')
    self.shape = (len(reader), reader.size, reader.size, 3)
    os.makedirs(cache_dir, exist_ok=True)
    for path, size in zip(self.paths, (int(np.prod(self.shape)), len(reader))):
      if not os.path.exists(path) or os.path.getsize(path) != size:
        with open(path, 'wb') as f:
          f.truncate(size)  # sparse, zeros: nothing decoded yet
    self._maps = None  # (images, flags), opened by each process on its first read

  def __getstate__(self):
    return {**self.__dict__, '_maps': None}

  def __call__(self, i) -> np.ndarray:
    if self._maps is None:  # one assignment: threads of one process may race here, harmlessly
      self._maps = (
        np.memmap(self.paths[0], np.uint8, 'r+', shape=self.shape),
        np.memmap(self.paths[1], np.uint8, 'r+', shape=self.shape[:1]),
      )
    images, done = self._maps
    if done[i]:
      return np.array(images[i])
    image = self.reader(i)
    images[i] = image
    done[i] = 1
    return image


def lazy(reader: ImageFiles, cache_dir: str | None = None) -> lazy_images.LazyImages:
  """The images of `reader`, decoded when indexed (once, into `cache_dir`, if given: `DecodeCache`)."""
  read = DecodeCache(reader, cache_dir) if cache_dir else reader
  return lazy_images.LazyImages(read, np.arange(len(reader)), (reader.size, reader.size, 3))


def check_size(size) -> int:
  """The `dataset.decode_size` option: unset (None / 0) means DEFAULT_SIZE."""
  size = size or DEFAULT_SIZE
  if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1:
    raise ValueError(f'dataset.decode_size must be a positive int (pixels, square), got {size!r}')
  return int(size)


def unreadable(path: str) -> str | None:
  """Why `decode` would fail on the file at `path` ('TypeName: message'), or None when it decodes.

  Checks what `decode` does (PIL opens it, decodes every byte, converts to RGB) at a reduced scale
  where PIL can (JPEG's DCT scaling via `draft`), which still reads the whole file: a truncated or
  corrupt file fails here as it would in training.
  """
  try:
    with Image.open(path) as image:
      image.draft('RGB', (64, 64))
      image.load()
      image.convert('RGB')
  # As ImageFiles: PIL raises OSError for truncated data, SyntaxError for some malformed headers.
  except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
    return f'{type(e).__name__}: {e}'
  return None


def missing(paths: Sequence[str]) -> list[int]:
  """Indices of the paths that are not files: one stat each (~1 s for 200k local files)."""
  return [i for i, p in enumerate(paths) if not os.path.isfile(p)]
