"""torchvision / DINOv2 state dicts -> the backbones' Flax layout: `python -m hashjax.weights convert`'s library."""

from __future__ import annotations

import os

from flax import nnx
import numpy as np

from hashjax.cli import errors
from hashjax.models import backbones
from hashjax.models.backbones import vit
from hashjax.workdir import checkpoint

# State-dict entries of the ImageNet networks that the backbones do not use: the classifiers
# (torchvision's ViT `heads`), GoogLeNet's aux heads, BatchNorm's counters, DINOv2's mask token.
_UNUSED_PREFIXES = ('classifier.6.', 'fc.', 'aux1.', 'aux2.', 'heads.')
_UNUSED_SUFFIXES = ('.num_batches_tracked',)
_UNUSED_KEYS = ('mask_token',)
# layers.TorchLayer kind -> {flax leaf: torch name after the layer's prefix}; kind 'tensor' is one
# parameter whose torch key is the layer's prefix (class token, position table), in torch's shape.
_TORCH_NAMES = {
  'conv': {'kernel': 'weight', 'bias': 'bias'},
  'linear': {'kernel': 'weight', 'bias': 'bias'},
  'bn': {'scale': 'weight', 'bias': 'bias', 'mean': 'running_mean', 'var': 'running_var'},
  'layernorm': {'scale': 'weight', 'bias': 'bias'},
  'in_proj': {'kernel': 'in_proj_weight', 'bias': 'in_proj_bias'},  # nn.MultiheadAttention's q|k|v rows
  'layerscale': {'gamma': 'gamma'},
}
_SAFETENSORS_HINT = (
  'convert it to safetensors first, where torch is installed: python -c "import torch, '
  "safetensors.torch as st; st.save_file(torch.load('{src}', weights_only=True), "
  "'{stem}.safetensors')\""
)


class ConversionError(ValueError):
  """A source state dict that does not fit the architecture; the message names the tensor."""


def read_state_dict(src: str) -> dict[str, np.ndarray]:
  """A torchvision state dict as NumPy arrays: safetensors, or .pth/.pt through torch if it is installed."""
  if not os.path.isfile(src):
    raise FileNotFoundError(f'{src}: no such file')
  if src.endswith('.safetensors'):
    from safetensors.numpy import load_file  # pylint: disable=g-import-not-at-top

    try:
      return load_file(src)
    except Exception as e:  # pylint: disable=broad-except  (safetensors raises its own error types)
      raise ConversionError(
        f'{src} is not a readable safetensors file ({errors.first_line(e, 160)}): a truncated download?'
      ) from None
  if src.endswith(('.pth', '.pt')):
    try:
      import torch  # pylint: disable=g-import-not-at-top  # optional: only for .pth sources
    except ImportError:
      raise ConversionError(
        f'{src}: reading .pth needs torch, which is not installed; '
        + _SAFETENSORS_HINT.format(src=src, stem=os.path.splitext(src)[0])
      ) from None
    state = torch.load(src, map_location='cpu', weights_only=True)
    return {k: v.float().numpy() if v.is_floating_point() else v.numpy() for k, v in state.items()}
  raise ConversionError(f'{src}: expected a .safetensors file (or .pth with torch installed)')


def abstract_backbone(arch: str, width: float = 1.0, in_channels: int = 3, arch_kwargs: dict | None = None):
  """(backbone module, params, batch stats) of `arch` as shapes only: nothing is allocated.

  `arch_kwargs`: the backbone's other constructor arguments (a ViT's depth, num_heads, patch_size,
  pretrain_size), for converting small test networks; the parameter shapes do not depend on the image size.
  """
  if arch not in backbones.BACKBONES:
    raise ConversionError(f'unknown --arch {arch!r}; valid: {", ".join(sorted(backbones.BACKBONES))}')
  kwargs = dict(arch_kwargs or {})
  size = kwargs.get('pretrain_size') or vit.CONFIGS[arch].pretrain_size if arch in vit.CONFIGS else 224
  model = nnx.eval_shape(
    lambda: backbones.HashNet(arch, 1, (size, size, in_channels), width=width, rngs=nnx.Rngs(0), **kwargs)
  )
  _, params, stats = nnx.split(model.backbone, nnx.Param, ...)
  return model.backbone, backbones.flatten(nnx.to_pure_dict(params)), backbones.flatten(nnx.to_pure_dict(stats))


def _entries(layer) -> list[tuple[str, str, str]]:
  """(flax key, torch key, flax leaf name) of each tensor of a layers.TorchLayer."""
  path = '.'.join(map(str, layer.path))
  if layer.kind == 'tensor':
    return [(path, layer.prefix, '')]
  return [(f'{path}.{name}', f'{layer.prefix}.{torch}', name) for name, torch in _TORCH_NAMES[layer.kind].items()]


def _check_vit_variant(arch: str, state: dict) -> None:
  """Fails in one line when a full-size ViT state dict is another (or no defined) variant than `arch`."""
  found, family, description = vit.identify(state)
  if found == arch or family is None:  # not a ViT at all: the generic checks name the tensors
    return
  if found is not None:
    raise ConversionError(f'the state dict is {found} ({description}), not {arch}: use --arch {found}')
  variants = ', '.join(name for name, c in vit.CONFIGS.items() if c.family == family)
  raise ConversionError(
    f'the state dict is {description}, which is none of the defined {family} variants ({variants}); '
    f'--arch {arch} does not fit it'
  )


def _torch_shape(kind: str, name: str, shape: tuple) -> tuple:
  if name == 'kernel' and kind == 'conv':  # HWIO -> OIHW
    return (shape[3], shape[2], shape[0], shape[1])
  if name == 'kernel':  # (in, out) -> (out, in)
    return (shape[1], shape[0])
  return tuple(shape)


def _to_flax(layer, name: str, tensor: np.ndarray) -> np.ndarray:
  tensor = np.asarray(tensor, np.float32)
  if name == 'kernel' and layer.kind == 'conv':
    return tensor.transpose(2, 3, 1, 0)
  if name == 'kernel' and layer.flatten_chw is not None:  # input axis (C, H, W) -> (H, W, C)
    c, h, w = layer.flatten_chw
    return tensor.reshape(-1, c, h, w).transpose(2, 3, 1, 0).reshape(h * w * c, -1)
  if name == 'kernel':
    return tensor.T
  return tensor


def convert_state_dict(
  arch: str,
  state: dict[str, np.ndarray],
  *,
  width: float = 1.0,
  in_channels: int = 3,
  arch_kwargs: dict | None = None,
) -> dict[str, dict[str, np.ndarray]]:
  """{'params': ..., 'batch_stats': ...} in `backbones.LAYOUT` from a torchvision-layout state dict
  (DINOv2's torch.hub layout for the dinov2_* architectures)."""
  backbone, params, stats = abstract_backbone(arch, width, in_channels, arch_kwargs)
  state = {k.removeprefix('module.'): v for k, v in state.items()}  # nn.DataParallel's prefix
  if arch in vit.CONFIGS and width == 1.0 and not arch_kwargs:
    _check_vit_variant(arch, state)
  expected = {}  # torch key -> (group, flax key, layer, flax leaf name, flax shape)
  for layer in backbone.torch_layers:
    for key, torch_key, name in _entries(layer):
      group = 'params' if key in params else 'batch_stats' if key in stats else None
      if group is not None:
        shape = (params if group == 'params' else stats)[key].shape
        expected[torch_key] = (group, key, layer, name, shape)
  covered = {key for _, key, *_ in expected.values()}
  assert covered == set(params) | set(stats), f'{arch}: torch layout misses {set(params) | set(stats) - covered}'

  unused = [k for k in state if k.startswith(_UNUSED_PREFIXES) or k.endswith(_UNUSED_SUFFIXES) or k in _UNUSED_KEYS]
  missing = [k for k in expected if k not in state]
  unexpected = [k for k in state if k not in expected and k not in unused]
  if unexpected or len(missing) > len(expected) // 2:
    source = 'DINOv2' if arch in vit.CONFIGS and vit.CONFIGS[arch].family == 'dinov2' else 'torchvision'
    raise ConversionError(
      f'the state dict does not look like {source} {arch}: {len(missing)} of its {len(expected)} tensors '
      f'missing (e.g. {", ".join(missing[:3]) or "none"}), {len(unexpected)} unexpected (e.g. '
      f'{", ".join(unexpected[:3]) or "none"}). Check --arch.'
    )
  if missing:
    raise ConversionError(
      f'missing tensor{"s" if len(missing) > 1 else ""}: {", ".join(missing)} '
      f'(a truncated or partial {arch} state dict?)'
    )
  converted = {'params': {}, 'batch_stats': {}}
  for torch_key, (group, key, layer, name, shape) in expected.items():
    want, got = _torch_shape(layer.kind, name, shape), tuple(state[torch_key].shape)
    if want != got:
      raise ConversionError(
        f'{torch_key}: expected {want}, got {got}'
        + (f' (in_channels={in_channels}, width={width})' if width != 1.0 or in_channels != 3 else '')
        + (f' ({arch_kwargs})' if arch_kwargs else '')
      )
    converted[group][key] = _to_flax(layer, name, state[torch_key])
  return {group: tree for group, tree in converted.items() if tree}


def convert(
  arch: str, src: str, dst: str, *, width: float = 1.0, in_channels: int = 3, arch_kwargs: dict | None = None
) -> dict:
  """Converts `src` and writes the checkpoint to `dst`; returns its meta."""
  weights = convert_state_dict(
    arch, read_state_dict(src), width=width, in_channels=in_channels, arch_kwargs=arch_kwargs
  )
  meta = {
    'layout': backbones.LAYOUT,
    'arch': arch,
    'width': width,
    'in_channels': in_channels,
    **({'arch_kwargs': dict(arch_kwargs)} if arch_kwargs else {}),
    'source': os.path.basename(src),
    'num_tensors': sum(len(tree) for tree in weights.values()),
  }
  checkpoint.save_weights(dst, weights, meta)
  return meta
