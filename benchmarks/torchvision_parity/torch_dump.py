"""Writes random-init reference models' state dicts (safetensors) and their features on fixed inputs.

    TORCH_VENV/bin/python benchmarks/torchvision_parity/torch_dump.py OUTDIR [--dinov2 DINOV2_SRC] [--only NAME,...]

Runs in a benchmark venv with torch, torchvision, safetensors and numpy (not hashjax's). Cases
(name -> architecture, input size, feature):
  * torchvision CNNs (eval mode, BatchNorm statistics randomised for the _bn nets, GoogLeNet with
    transform_input=True as its pretrained weights): fc7 before ReLU (AlexNet / VGG) or the pooled
    vector (ResNet / GoogLeNet), 224 px.
  * torchvision vit_b_16: the class token after `encoder.ln` (`heads` = Identity) at 224 px, and at
    160 px from a model built for 160 px with the 224 px weights resized by torchvision's own
    `interpolate_embeddings` (the path hashjax reproduces in its forward pass).
  * DINOv2 ViT-S/14 (and ViT-S/14 with registers), built by the fetched facebookresearch/dinov2 code's
    torch.hub constructors (`dinov2.hub.backbones.dinov2_vits14[_reg](pretrained=False)`: 518 px
    table, LayerScale, the hub's interpolation settings): `x_norm_clstoken` at 224 px (the table
    resized 37 -> 16) and at 518 px (native), and the class token + mean patch token at 224 px.
    DINOV2_SRC is a directory holding the `dinov2` package (e.g. `git --git-dir=<mirror> archive
    HEAD dinov2 | tar -x -C DINOV2_SRC`); without it the DINOv2 cases are skipped.
Every parameter a random init leaves constant (biases, LayerNorm and LayerScale, class tokens) is
redrawn so a misplaced tensor shows. Inputs: N(0, 1), 2 images, seed 0. `cases.json` lists what
was written, for jax_compare.py.
"""

import argparse
import json
import os
import sys

import numpy as np
import safetensors.torch as st
import torch
import torchvision

CNNS = ('alexnet', 'vgg16', 'vgg19', 'vgg11_bn', 'resnet18', 'resnet50', 'googlenet')


def randomize_constants(model, seed):
  """Redraws what a random init leaves constant: biases, norm scales, LayerScale, tokens."""
  g = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for name, p in model.named_parameters():
      leaf = name.rsplit('.', 1)[-1]
      if leaf in ('bias', 'in_proj_bias') or name.endswith(('class_token', 'cls_token', 'register_tokens')):
        p.copy_(0.1 * torch.randn(p.shape, generator=g))
      elif leaf == 'gamma' or (leaf == 'weight' and p.ndim == 1):  # LayerScale, LayerNorm / BatchNorm scale
        p.copy_(0.5 + torch.rand(p.shape, generator=g))


def save(out, name, model, features, cases, **case):
  st.save_file({k: v.contiguous() for k, v in model.state_dict().items()}, f'{out}/{name}.safetensors')
  np.save(f'{out}/{name}_feat.npy', features.numpy())
  cases[name] = dict(case, weights=f'{name}.safetensors', features=f'{name}_feat.npy')
  print(name, tuple(features.shape), flush=True)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('out')
  parser.add_argument('--dinov2', default='', help='directory holding the dinov2 package (fetched source)')
  parser.add_argument('--only', default='', help='comma-separated case names')
  args = parser.parse_args()
  out, only = args.out, set(filter(None, args.only.split(',')))
  os.makedirs(out, exist_ok=True)
  want = lambda name: not only or name in only
  torch.manual_seed(0)
  rng = np.random.default_rng(0)
  inputs = {size: rng.standard_normal((2, 3, size, size)).astype(np.float32) for size in (224, 160, 518)}
  for size, x in inputs.items():
    np.save(f'{out}/x{size}.npy', x)
  x224 = torch.from_numpy(inputs[224])
  cases = {}

  for arch in CNNS:
    if not want(arch):
      continue
    kw = dict(aux_logits=False, init_weights=True, transform_input=True) if arch == 'googlenet' else {}
    m = getattr(torchvision.models, arch)(weights=None, **kw).eval()
    if arch.endswith('_bn'):  # non-trivial BN statistics
      for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
          mod.running_mean.uniform_(-0.5, 0.5)
          mod.running_var.uniform_(0.5, 2.0)
          mod.weight.data.uniform_(0.5, 1.5)
          mod.bias.data.uniform_(-0.2, 0.2)
    with torch.no_grad():
      if arch.startswith(('alexnet', 'vgg')):
        f = m.avgpool(m.features(x224)).flatten(1)
        fc7 = 5 if arch == 'alexnet' else 4  # alexnet: dropout, fc6, relu, dropout, fc7; vgg: fc6, relu, dropout, fc7
        f = m.classifier[:fc7](f)
      else:
        m.fc = torch.nn.Identity()
        f = m(x224)
    save(out, arch, m, f, cases, arch=arch, size=224)

  if want('vit_b_16') or want('vit_b_16_160'):
    from torchvision.models import vision_transformer as tv_vit  # pylint: disable=g-import-not-at-top

    m = torchvision.models.vit_b_16(weights=None).eval()
    randomize_constants(m, 1)
    m.heads = torch.nn.Identity()  # the feature: the class token after encoder.ln
    with torch.no_grad():
      save(out, 'vit_b_16', m, m(x224), cases, arch='vit_b_16', size=224)
      # 160 px: torchvision's own recipe for another size, a model built for it + interpolate_embeddings.
      m160 = torchvision.models.vit_b_16(weights=None, image_size=160).eval()
      m160.heads = torch.nn.Identity()
      m160.load_state_dict(tv_vit.interpolate_embeddings(160, 16, m.state_dict()))
      f = m160(torch.from_numpy(inputs[160]))
    np.save(f'{out}/vit_b_16_160_feat.npy', f.numpy())  # same weights as vit_b_16 (the 224 px table)
    cases['vit_b_16_160'] = dict(
      arch='vit_b_16', size=160, weights='vit_b_16.safetensors', features='vit_b_16_160_feat.npy'
    )
    print('vit_b_16_160', tuple(f.shape), flush=True)

  if args.dinov2:
    sys.path.insert(0, args.dinov2)
    from dinov2.hub import backbones as hub  # pylint: disable=g-import-not-at-top

    for arch in ('dinov2_vits14', 'dinov2_vits14_reg'):
      if not any(want(n) for n in (arch, f'{arch}_518', f'{arch}_cls_mean')):
        continue
      m = getattr(hub, arch)(pretrained=False).eval()
      randomize_constants(m, 2)
      with torch.no_grad():
        ff = m.forward_features(x224)
        save(out, arch, m, ff['x_norm_clstoken'], cases, arch=arch, size=224)
        f = torch.cat([ff['x_norm_clstoken'], ff['x_norm_patchtokens'].mean(1)], dim=-1)
        np.save(f'{out}/{arch}_cls_mean_feat.npy', f.numpy())
        cases[f'{arch}_cls_mean'] = dict(
          arch=arch,
          size=224,
          feature_layer='cls_mean',
          weights=f'{arch}.safetensors',
          features=f'{arch}_cls_mean_feat.npy',
        )
        if arch == 'dinov2_vits14':  # the native 37 x 37 grid: the table as is
          f = m.forward_features(torch.from_numpy(inputs[518]))['x_norm_clstoken']
          np.save(f'{out}/{arch}_518_feat.npy', f.numpy())
          cases[f'{arch}_518'] = dict(
            arch=arch, size=518, weights=f'{arch}.safetensors', features=f'{arch}_518_feat.npy'
          )
      print(arch, 'parameters', sum(p.numel() for p in m.parameters()), flush=True)

  versions = dict(torch=torch.__version__, torchvision=torchvision.__version__)
  with open(f'{out}/cases.json', 'w') as f:
    json.dump(dict(cases=cases, versions=versions), f, indent=1)


if __name__ == '__main__':
  main()
