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
import os

import numpy as np
from PIL import Image

from hashjax.data import lazy_images

DEFAULT_SIZE = 256  # DeepHash-pytorch's resize_size, before its 224 crop
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png')  # what image_folder picks up (any case)


def decode(path: str, size: int) -> np.ndarray:
  """uint8 (size, size, 3): the file decoded by PIL, converted to RGB and resized (bilinear) if needed."""
  with Image.open(path) as image:
    image = image.convert('RGB')
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


def lazy(reader: ImageFiles) -> lazy_images.LazyImages:
  return lazy_images.LazyImages(reader, np.arange(len(reader)), (reader.size, reader.size, 3))


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
