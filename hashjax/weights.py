"""Converts torchvision-format (and DINOv2) ImageNet weights into hashjax backbone checkpoints (Orbax).

    python -m hashjax.weights convert --arch vgg16 --src vgg16.safetensors --dst weights/vgg16
    python -m hashjax.main --config configs/dsh.py --config.model.name=vgg16 \\
        --config.model.pretrained=weights/vgg16 --config.image_size=224

The source is a state dict in torchvision's key layout (see hashjax/models/backbones/), or for the
dinov2_* architectures DINOv2's torch.hub layout (`dinov2_vits14_pretrain.pth` etc.), as
safetensors. To make one where torch is installed (hashjax itself does not need torch):

    python -c "import torch, safetensors.torch as st; \
        st.save_file(torch.load('vgg16-397923af.pth', weights_only=True), 'vgg16.safetensors')"

Conversion: conv kernels OIHW -> HWIO; linear weights (out, in) -> (in, out); the first linear
after the convolutions also has its input axis permuted from torch's channel-major (C, H, W)
flatten to the NHWC (H, W, C) flatten of these models; BatchNorm weight/bias -> scale/bias params,
running_mean/var -> frozen statistics. Vision transformers: the patch-embedding conv as above,
attention in_proj_weight / qkv.weight (3 dim, dim) -> the fused qkv kernel (dim, 3 dim), LayerNorm
weight/bias -> scale/bias, LayerScale gamma, class/register tokens and the position table kept in
torch's shape (at the pre-training grid; the model resizes it per input size). The ImageNet
classifier (`classifier.6`, `fc`, ViT `heads`), GoogLeNet's aux heads, `num_batches_tracked` and
DINOv2's `mask_token` are dropped; the hash head is not stored (it starts fresh). A ViT state dict
of another variant than --arch (e.g. vit_l_16 for vit_b_16) fails naming the variant it is.
The checkpoint's layout is `backbones.LAYOUT`; `models.build` loads it (`--config.model.pretrained`).
"""

from __future__ import annotations

import argparse
import sys

from hashjax.cli import command
from hashjax.models import backbones
from hashjax.models.backbones import convert


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog='python -m hashjax.weights', description=__doc__.split('\n')[0])
  commands = parser.add_subparsers(dest='command', required=True)
  c = commands.add_parser('convert', help='torchvision state dict (.safetensors) -> Orbax backbone checkpoint')
  c.add_argument('--arch', required=True, help=f'one of {", ".join(sorted(backbones.BACKBONES))}')
  c.add_argument('--src', required=True, help='state dict: .safetensors (or .pth if torch is installed)')
  c.add_argument('--dst', required=True, help='new directory for the checkpoint')
  c.add_argument('--width', type=float, default=1.0, help='channel multiplier (1.0 = the real network)')
  c.add_argument('--in-channels', type=int, default=3, help='input channels of the first conv')
  parser.add_argument('--verbosity', default=None, help=command.VERBOSITY_HELP)
  args = parser.parse_args(argv)

  def weights():
    meta = convert.convert(args.arch, args.src, args.dst, width=args.width, in_channels=args.in_channels)
    print(f'wrote {meta["num_tensors"]} tensors of {args.arch} to {args.dst} (layout {meta["layout"]})')

  return command.run(weights, verbose=args.verbosity is not None)


if __name__ == '__main__':
  sys.exit(main())
