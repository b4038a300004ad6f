"""Input pipeline throughput: hashjax's streaming input vs PyTorch's DataLoader on the same JPEG folder.

  .venv/bin/python benchmarks/input_pipeline.py [--images 1536] [--size 224] [--workers 2] [--batch 128] \
      [--batches 24] [--torch_python /path/to/venv-with-torch/bin/python] [--out results.json]

Writes an ImageNet-like folder once (`--dir`, default /tmp/hashjax_input_bench: `--images` JPEGs of
500x375, quality 90, 16 classes, smooth content plus noise, as photos compress), then measures, with
the same number of worker processes, the same decode (PIL open, convert('RGB'), bilinear resize to
`--size` x `--size`) and the same batch size:
  * hashjax: `streaming.Feed` over the image_folder dataset (grain workers decode, a thread puts the
    batches on the device), exactly what training reads; and again with `dataset.cache_dir`, after
    one pass has decoded every image into the cache (what every epoch after the first reads);
  * PyTorch: a torchvision-style Dataset doing that decode in `__getitem__` + `torch.utils.data.DataLoader`
    (shuffle, `num_workers`, pinned memory off on CPU), run by `--torch_python` (a venv with torch;
    torch is a benchmark-only dependency, never installed by the project) or skipped.
Each measures `--batches` batches after `--skip` warm-up batches (the workers' start-up and what
both pipelines buffer ahead: grain 2 per worker + 2 on the device, the DataLoader 2 per worker); the
two runs alternate `--repeats` times and the table gives the median images/s and the ratio.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
from PIL import Image

TORCH_SCRIPT = r"""
import sys, time, json, os
import numpy as np
import torch
from PIL import Image
root, size, workers, batch, batches, skip = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
paths = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.endswith('.jpg'))

class Folder(torch.utils.data.Dataset):
  def __len__(self):
    return len(paths)
  def __getitem__(self, i):
    with Image.open(paths[i]) as image:
      image = image.convert('RGB')
    image = image.resize((size, size), Image.Resampling.BILINEAR)
    return torch.from_numpy(np.asarray(image, np.uint8))

torch.set_num_threads(1)
loader = torch.utils.data.DataLoader(Folder(), batch_size=batch, shuffle=True, num_workers=workers, drop_last=True,
                                     persistent_workers=workers > 0, generator=torch.Generator().manual_seed(0))
def forever():
  while True:
    yield from loader
it = forever()
for _ in range(skip):
  next(it)
t0 = time.perf_counter()
for _ in range(batches):
  next(it)
seconds = time.perf_counter() - t0
print(json.dumps({'images_per_s': batches * batch / seconds, 'seconds': seconds, 'torch': torch.__version__}))
"""


def write_folder(root: str, count: int, width: int = 500, height: int = 375, classes: int = 16) -> None:
  done = os.path.join(root, 'done')
  if os.path.exists(done):
    return
  rng = np.random.default_rng(0)
  y, x = np.mgrid[0:height, 0:width].astype(np.float32)
  for i in range(count):
    folder = os.path.join(root, f'class{i % classes:02d}')
    os.makedirs(folder, exist_ok=True)
    a, b, c = rng.random(3) * 0.05
    base = np.stack([np.sin(a * x + b * y), np.cos(b * x - c * y), np.sin(c * x + a * y)], -1) * 100 + 128
    pixels = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(os.path.join(folder, f'{i:06d}.jpg'), quality=90)
  open(done, 'w').close()


def hashjax_rate(root: str, size: int, workers: int, batch: int, batches: int, skip: int, cache_dir: str = '') -> float:
  from hashjax.data import pipeline  # pylint: disable=g-import-not-at-top
  from hashjax.data import sources  # pylint: disable=g-import-not-at-top
  from hashjax.data import streaming  # pylint: disable=g-import-not-at-top
  from hashjax.parallel import sharding  # pylint: disable=g-import-not-at-top

  split = sources.load('image_folder', root, decode_size=size, cache_dir=cache_dir or None).splits['train']
  train = pipeline.TrainBatches(split.images, split.labels, np.arange(len(split.labels)), batch, seed=0)
  data = sharding.data_sharding(sharding.make_mesh(1))
  with streaming.Feed(train, 0, skip + batches, data, workers=workers, prefetch=2) as feed:
    for _ in range(skip):
      next(feed)['image'].block_until_ready()
    t0 = time.perf_counter()
    for _ in range(batches):
      next(feed)['image'].block_until_ready()
    return batches * batch / (time.perf_counter() - t0)


def torch_rate(python: str, root: str, size: int, workers: int, batch: int, batches: int, skip: int) -> dict:
  out = subprocess.run(
    [python, '-c', TORCH_SCRIPT, root, str(size), str(workers), str(batch), str(batches), str(skip)],
    capture_output=True,
    text=True,
    check=True,
  )
  return json.loads(out.stdout.strip().splitlines()[-1])


def main():
  p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  p.add_argument('--dir', default='/tmp/hashjax_input_bench')
  p.add_argument('--images', type=int, default=1536)
  p.add_argument('--size', type=int, default=224)
  p.add_argument('--workers', type=int, default=len(os.sched_getaffinity(0)))
  p.add_argument('--batch', type=int, default=128)
  p.add_argument('--batches', type=int, default=24)
  p.add_argument(
    '--skip',
    type=int,
    default=None,
    help="warm-up batches (default 2 * workers + 4: the workers' "
    'start-up, then whatever both pipelines buffered ahead, so the timing sees steady decoding)',
  )
  p.add_argument('--repeats', type=int, default=3)
  p.add_argument('--torch_python', default=None, help='a Python with torch installed (e.g. a benchmark venv)')
  p.add_argument(
    '--cache_dir',
    default='/tmp/hashjax_input_bench_cache',
    help="also time dataset.cache_dir's decoded-once images, after one pass fills it ('': skip)",
  )
  p.add_argument('--out', default=None)
  args = p.parse_args()
  write_folder(args.dir, args.images)
  skip = 2 * args.workers + 4 if args.skip is None else args.skip
  config = (args.size, args.workers, args.batch, args.batches, skip)
  runs = {'hashjax': [], 'torch': [], 'cached': []}
  if args.cache_dir:  # one pass over every image fills the cache
    hashjax_rate(args.dir, args.size, args.workers, args.batch, -(-args.images // args.batch), 0, args.cache_dir)
  for _ in range(args.repeats):  # alternate: a shared machine's load hits both alike
    runs['hashjax'].append(hashjax_rate(args.dir, *config))
    if args.torch_python:
      runs['torch'].append(torch_rate(args.torch_python, args.dir, *config)['images_per_s'])
    if args.cache_dir:
      runs['cached'].append(hashjax_rate(args.dir, *config, args.cache_dir))
  result = {
    'images': args.images,
    'size': args.size,
    'workers': args.workers,
    'batch': args.batch,
    'batches': args.batches,
    'hashjax_images_per_s': [round(r, 1) for r in runs['hashjax']],
    'torch_images_per_s': [round(r, 1) for r in runs['torch']],
    'hashjax_cached_images_per_s': [round(r, 1) for r in runs['cached']],
  }
  hj = statistics.median(runs['hashjax'])
  print(
    f'| pipeline (224 px decode+resize, {args.workers} workers, batch {args.batch}) | images/s (median of {args.repeats}) |'
  )
  print('|---|---|')
  print(f'| hashjax streaming.Feed (grain workers + device thread) | {hj:.0f} |')
  if runs['cached']:
    print(f'| hashjax with dataset.cache_dir (decoded once; later epochs) | {statistics.median(runs["cached"]):.0f} |')
  if runs['torch']:
    tr = statistics.median(runs['torch'])
    result['ratio_hashjax_over_torch'] = round(hj / tr, 3)
    print(f'| PyTorch DataLoader (same decode) | {tr:.0f} |')
    print(f'| ratio hashjax / PyTorch | {hj / tr:.2f}x |')
    if runs['cached']:
      result['ratio_cached_over_torch'] = round(statistics.median(runs['cached']) / tr, 3)
      print(f'| ratio hashjax cached / PyTorch | {result["ratio_cached_over_torch"]:.2f}x |')
  print(json.dumps(result))
  if args.out:
    with open(args.out, 'w') as f:
      json.dump(result, f, indent=2)


if __name__ == '__main__':
  main()
