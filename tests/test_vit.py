"""Vision transformers (torchvision ViT, DINOv2): the Flax forward pass of converted torch-layout weights
equals a NumPy reference that runs the same state dict in torch's layout.

State dicts are random, drawn here from the references' key names and shapes (written out
independently of the models' `torch_layers`), at small widths, depths and images. The reference
is float64 NumPy: patch embedding as a strided conv in NCHW/OIHW, nn.MultiheadAttention from
in_proj_weight / DINOv2's qkv, LayerNorm (eps 1e-6), exact-erf GELU, LayerScale, and the
position-table resize as torch computes it (a direct per-pixel implementation of ATen's bicubic
kernels, checked here against tests/data/torch_bicubic.npz, which torch itself wrote:
benchmarks/torchvision_parity/bicubic_fixture.py). The real torch models are compared in
benchmarks/torchvision_parity/ (torch is not a test dependency).
Tolerance: float32 Flax vs float64 NumPy, |flax - ref| <= 1e-5 * max|ref| + 1e-5 * |ref|.
"""

import math
import os

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from safetensors.numpy import save_file
from scipy import special

from hashjax import models
from hashjax import weights
from hashjax.models import backbones
from hashjax.models.backbones import convert
from hashjax.models.backbones import layers
from hashjax.models.backbones import vit
from hashjax.train import trainer
from tests import helpers

FIXTURE = os.path.join(os.path.dirname(__file__), 'data', 'torch_bicubic.npz')

# ---------------------------------------------------------------------------------------------
# NumPy reference, torch layout.


def ref_cubic(x, a):
  x = abs(x)
  if x < 1:
    return ((a + 2) * x - (a + 3)) * x * x + 1
  if x < 2:
    return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
  return 0.0


def ref_taps(size, out, i, mode):
  """[(source index, weight)] of output pixel i along one axis, as ATen computes them."""
  if mode == 'antialias':  # _upsample_bicubic2d_aa: PIL's a = -0.5, support 2 * scale when shrinking
    scale = size / out
    support, stretch = (2 * scale, 1 / scale) if scale >= 1 else (2.0, 1.0)
    center = scale * (i + 0.5)
    lo, hi = max(int(center - support + 0.5), 0), min(int(center + support + 0.5), size)
    taps = [(j, ref_cubic((j - center + 0.5) * stretch, -0.5)) for j in range(lo, hi)]
    total = sum(w for _, w in taps)
    return [(j, w / total) for j, w in taps]
  if mode == 'align_corners':
    src = i * (size - 1) / (out - 1) if out > 1 else 0.0
  elif mode == 'offset':  # scale_factor = (out + 0.1) / size; torch maps with 1 / scale_factor
    src = (i + 0.5) * size / (out + 0.1) - 0.5
  else:
    src = (i + 0.5) * size / out - 0.5
  i0 = math.floor(src)
  t = src - i0
  weights_ = (ref_cubic(t + 1, -0.75), ref_cubic(t, -0.75), ref_cubic(1 - t, -0.75), ref_cubic(2 - t, -0.75))
  return [(min(max(i0 - 1 + k, 0), size - 1), w) for k, w in enumerate(weights_)]


def ref_resize(grid, out_h, out_w, mode):
  """(M, M, D) -> (out_h, out_w, D), pixel by pixel (F.interpolate(mode='bicubic') per `mode`)."""
  m = grid.shape[0]
  out = np.zeros((out_h, out_w, grid.shape[2]))
  for i in range(out_h):
    for j in range(out_w):
      for a, wa in ref_taps(m, out_h, i, mode):
        for b, wb in ref_taps(m, out_w, j, mode):
          out[i, j] += wa * wb * grid[a, b]
  return out


def ref_pos_embed(table, grid, mode):
  """torchvision's interpolate_embeddings / DINOv2's interpolate_pos_encoding: (1, 1 + M*M, D) -> grid."""
  m = math.isqrt(table.shape[1] - 1)
  if grid == (m, m):
    return table
  patches = ref_resize(table[0, 1:].reshape(m, m, -1), *grid, mode)
  return np.concatenate([table[:, :1], patches.reshape(1, -1, table.shape[2])], axis=1)


def ref_layer_norm(x, sd, prefix):
  mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
  return (x - mean) / np.sqrt(var + 1e-6) * sd[f'{prefix}.weight'] + sd[f'{prefix}.bias']


def ref_linear(x, sd, prefix):
  return x @ sd[f'{prefix}.weight'].T + sd[f'{prefix}.bias']


def ref_gelu(x):
  return 0.5 * x * (1 + special.erf(x / np.sqrt(2)))


def ref_attention(x, w_in, b_in, w_out, b_out, heads):
  """nn.MultiheadAttention(x, x, x) (batch_first): q|k|v = rows of in_proj; per-head softmax(q k^T / sqrt(d))."""
  b, n, d = x.shape
  q, k, v = np.split(x @ w_in.T + b_in, 3, axis=-1)
  split = lambda t: t.reshape(b, n, heads, d // heads).transpose(0, 2, 1, 3)
  q, k, v = split(q), split(k), split(v)
  logits = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d // heads)
  attn = np.exp(logits - logits.max(-1, keepdims=True))
  attn /= attn.sum(-1, keepdims=True)
  return (attn @ v).transpose(0, 2, 1, 3).reshape(b, n, d) @ w_out.T + b_out


def ref_patch_embed(x, w, b):
  """Conv2d(kernel = stride = p) on NCHW x, then flatten(2).transpose(1, 2): (N, patches, D)."""
  n, c, h, wd = x.shape
  p = w.shape[-1]
  patches = x.reshape(n, c, h // p, p, wd // p, p)
  out = np.einsum('nchpwq,dcpq->nhwd', patches, w) + b
  return out.reshape(n, -1, w.shape[0])


def ref_torchvision_vit(sd, x, heads, feature='cls'):
  """torchvision VisionTransformer.forward without `heads` (class token after encoder.ln)."""
  p = sd['conv_proj.weight'].shape[-1]
  tokens = ref_patch_embed(x, sd['conv_proj.weight'], sd['conv_proj.bias'])
  tokens = np.concatenate([np.broadcast_to(sd['class_token'], (x.shape[0], 1, tokens.shape[2])), tokens], axis=1)
  grid = (x.shape[2] // p, x.shape[3] // p)
  h = tokens + ref_pos_embed(sd['encoder.pos_embedding'], grid, 'align_corners')
  i = 0
  while f'encoder.layers.encoder_layer_{i}.ln_1.weight' in sd:
    pre = f'encoder.layers.encoder_layer_{i}'
    y = ref_layer_norm(h, sd, f'{pre}.ln_1')
    y = ref_attention(
      y,
      sd[f'{pre}.self_attention.in_proj_weight'],
      sd[f'{pre}.self_attention.in_proj_bias'],
      sd[f'{pre}.self_attention.out_proj.weight'],
      sd[f'{pre}.self_attention.out_proj.bias'],
      heads,
    )
    h = h + y
    y = ref_linear(ref_gelu(ref_linear(ref_layer_norm(h, sd, f'{pre}.ln_2'), sd, f'{pre}.mlp.0')), sd, f'{pre}.mlp.3')
    h, i = h + y, i + 1
  h = ref_layer_norm(h, sd, 'encoder.ln')
  return h[:, 0] if feature == 'cls' else np.concatenate([h[:, 0], h[:, 1:].mean(1)], axis=-1)


def ref_dinov2(sd, x, heads, feature='cls'):
  """DinoVisionTransformer.forward_features: x_norm_clstoken (or it and the mean x_norm_patchtokens)."""
  p = sd['patch_embed.proj.weight'].shape[-1]
  tokens = ref_patch_embed(x, sd['patch_embed.proj.weight'], sd['patch_embed.proj.bias'])
  tokens = np.concatenate([np.broadcast_to(sd['cls_token'], (x.shape[0], 1, tokens.shape[2])), tokens], axis=1)
  registers = 'register_tokens' in sd
  mode = 'antialias' if registers else 'offset'  # the hub's settings (vit.py docstring)
  h = tokens + ref_pos_embed(sd['pos_embed'], (x.shape[2] // p, x.shape[3] // p), mode)
  r = sd['register_tokens'].shape[1] if registers else 0
  if registers:
    h = np.concatenate([h[:, :1], np.broadcast_to(sd['register_tokens'], (x.shape[0], r, h.shape[2])), h[:, 1:]], 1)
  i = 0
  while f'blocks.{i}.norm1.weight' in sd:
    pre = f'blocks.{i}'
    y = ref_layer_norm(h, sd, f'{pre}.norm1')
    y = ref_attention(
      y,
      sd[f'{pre}.attn.qkv.weight'],
      sd[f'{pre}.attn.qkv.bias'],
      sd[f'{pre}.attn.proj.weight'],
      sd[f'{pre}.attn.proj.bias'],
      heads,
    )
    h = h + y * sd[f'{pre}.ls1.gamma']
    y = ref_linear(
      ref_gelu(ref_linear(ref_layer_norm(h, sd, f'{pre}.norm2'), sd, f'{pre}.mlp.fc1')), sd, f'{pre}.mlp.fc2'
    )
    h, i = h + y * sd[f'{pre}.ls2.gamma'], i + 1
  h = ref_layer_norm(h, sd, 'norm')
  return h[:, 0] if feature == 'cls' else np.concatenate([h[:, 0], h[:, 1 + r :].mean(1)], axis=-1)


# ---------------------------------------------------------------------------------------------
# Random state dicts in the references' layouts (with the parts the converter must drop).


class StateDict:
  def __init__(self, seed):
    self.rng, self.sd = np.random.default_rng(seed), {}

  def tensor(self, name, shape, scale=1.0):
    self.sd[name] = self.rng.normal(size=shape) * scale

  def linear(self, name, fin, fout, weight='weight', bias='bias'):
    self.tensor(f'{name}.{weight}', (fout, fin), 1 / np.sqrt(fin))
    self.tensor(f'{name}.{bias}', (fout,), 0.1)

  def norm(self, name, dim):
    self.sd[f'{name}.weight'] = 1 + 0.2 * self.rng.normal(size=dim)
    self.tensor(f'{name}.bias', (dim,), 0.2)


def sd_torchvision_vit(dim=32, depth=2, mlp=128, patch=8, grid=5, cin=3, seed=0):
  s = StateDict(seed)
  s.tensor('conv_proj.weight', (dim, cin, patch, patch), 1 / np.sqrt(cin * patch * patch))
  s.tensor('conv_proj.bias', (dim,), 0.1)
  s.tensor('class_token', (1, 1, dim), 0.5)
  s.tensor('encoder.pos_embedding', (1, grid * grid + 1, dim), 0.5)
  for i in range(depth):
    pre = f'encoder.layers.encoder_layer_{i}'
    s.norm(f'{pre}.ln_1', dim)
    s.linear(f'{pre}.self_attention', dim, 3 * dim, 'in_proj_weight', 'in_proj_bias')
    s.linear(f'{pre}.self_attention.out_proj', dim, dim)
    s.norm(f'{pre}.ln_2', dim)
    s.linear(f'{pre}.mlp.0', dim, mlp)
    s.linear(f'{pre}.mlp.3', mlp, dim)
  s.norm('encoder.ln', dim)
  s.linear('heads.head', dim, 10)  # the ImageNet classifier: present in torchvision's file, unused
  return s.sd


def sd_dinov2(dim=32, depth=2, mlp=128, patch=14, grid=5, registers=0, cin=3, seed=0):
  s = StateDict(seed)
  s.tensor('cls_token', (1, 1, dim), 0.5)
  s.tensor('pos_embed', (1, grid * grid + 1, dim), 0.5)
  if registers:
    s.tensor('register_tokens', (1, registers, dim), 0.5)
  s.tensor('mask_token', (1, dim))  # masked pre-training only: unused
  s.tensor('patch_embed.proj.weight', (dim, cin, patch, patch), 1 / np.sqrt(cin * patch * patch))
  s.tensor('patch_embed.proj.bias', (dim,), 0.1)
  for i in range(depth):
    pre = f'blocks.{i}'
    s.norm(f'{pre}.norm1', dim)
    s.linear(f'{pre}.attn.qkv', dim, 3 * dim)
    s.linear(f'{pre}.attn.proj', dim, dim)
    s.sd[f'{pre}.ls1.gamma'] = s.rng.uniform(0.5, 1.5, size=dim)
    s.norm(f'{pre}.norm2', dim)
    s.linear(f'{pre}.mlp.fc1', dim, mlp)
    s.linear(f'{pre}.mlp.fc2', mlp, dim)
    s.sd[f'{pre}.ls2.gamma'] = s.rng.uniform(0.5, 1.5, size=dim)
  s.norm('norm', dim)
  return s.sd


# Small networks: width 32 (vit_b_16 / 24, dinov2_vits14 / 12; MLP 128), 2 blocks of 2 heads.
TV = dict(width=1 / 24, depth=2, num_heads=2, patch_size=8, pretrain_size=40)  # a 5 x 5 table
DINO = dict(width=1 / 12, depth=2, num_heads=2, pretrain_size=70)  # patch 14, a 5 x 5 table


def converted_params(arch, sd, image_shape, **kwargs):
  """(graphdef, params) of a HashNet whose backbone holds `sd` converted (the head zeroed)."""
  arch_kwargs = {k: v for k, v in kwargs.items() if k not in ('width', 'feature_layer')}
  weights_ = convert.convert_state_dict(
    arch, sd, width=kwargs['width'], in_channels=image_shape[2], arch_kwargs=arch_kwargs
  )
  model = nnx.eval_shape(lambda: backbones.HashNet(arch, 8, image_shape, rngs=nnx.Rngs(0), **kwargs))
  graphdef, params = nnx.split(model, nnx.Param)
  params = nnx.to_pure_dict(params)
  params = dict(
    params,
    backbone=backbones.fill(params['backbone'], weights_['params']),
    head=jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), params['head']),
  )
  return graphdef, params


def flax_features(arch, sd, x_nchw, **kwargs):
  shape = (x_nchw.shape[2], x_nchw.shape[3], x_nchw.shape[1])
  graphdef, params = converted_params(arch, sd, shape, **kwargs)
  x = jnp.asarray(x_nchw.transpose(0, 2, 3, 1), jnp.float32)
  run = jax.jit(lambda p, x: nnx.merge(graphdef, p).features(x))
  return np.asarray(run(params, x), np.float64)


def assert_close(flax, ref):
  np.testing.assert_allclose(flax, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


def images(shape, seed=1):
  return np.random.default_rng(seed).normal(size=shape)


# ---------------------------------------------------------------------------------------------
# Position-table resize against torch's own outputs.


def _fixture_cases():
  with np.load(FIXTURE) as f:
    return sorted(k for k in f.files if not k.startswith('in') and k != 'torch_version')


@pytest.mark.parametrize('key', _fixture_cases())
def test_bicubic_matches_torch_fixture(key):
  """layers.bicubic_matrix and this file's reference both reproduce torch's F.interpolate outputs."""
  mode, m, h, w = key.rsplit('_', 3)
  m, h, w = int(m), int(h), int(w)
  with np.load(FIXTURE) as f:
    table, expected = f[f'in{m}'][0, 0], f[key][0, 0]
  kwargs = {
    'align_corners': dict(align_corners=True),
    'offset': dict(scale_factor=None),  # per axis below
    'antialias': dict(antialias=True),
    'size': {},
  }[mode]
  if mode == 'offset':
    rows = layers.bicubic_matrix(m, h, scale_factor=(h + 0.1) / m)
    cols = layers.bicubic_matrix(m, w, scale_factor=(w + 0.1) / m)
  else:
    rows, cols = layers.bicubic_matrix(m, h, **kwargs), layers.bicubic_matrix(m, w, **kwargs)
  np.testing.assert_allclose(rows @ table @ cols.T, expected, rtol=0, atol=1e-12)
  np.testing.assert_allclose(ref_resize(table[:, :, None], h, w, mode)[:, :, 0], expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize('arch', ['vit_b_16', 'dinov2_vits14', 'dinov2_vits14_reg'])
def test_position_embedding_resize_at_real_grid_sizes(arch):
  """The real tables: torchvision 14 x 14 -> 24 x 24 (384 px), DINOv2 37 x 37 -> 16 x 16 (224 px)."""
  config = vit.CONFIGS[arch]
  size = 384 if config.family == 'torchvision' else 224
  shape = (size, size, 3)
  backbone = nnx.eval_shape(
    lambda: backbones.HashNet(arch, 8, shape, width=1 / 48, num_heads=2, rngs=nnx.Rngs(0))
  ).backbone
  graphdef, params = nnx.split(backbone, nnx.Param)
  params = jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), nnx.to_pure_dict(params))
  table = images(params['pos_embed'].shape)
  params['pos_embed'] = table.astype(np.float32)
  resized = jax.jit(lambda p: nnx.merge(graphdef, p).position_embedding())(params)
  mode = 'align_corners' if config.family == 'torchvision' else 'antialias' if config.registers else 'offset'
  grid = backbone.grid
  assert grid == (size // config.patch_size,) * 2 and resized.shape == (1, 1 + grid[0] * grid[1], table.shape[2])
  np.testing.assert_allclose(resized, ref_pos_embed(table, grid, mode), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Forward pass of converted weights against the reference.


@pytest.mark.parametrize(
  'size',
  [(40, 40), (32, 32), (48, 48), (32, 48)],  # native 5 x 5 table; shrunk; grown; per-axis (non-square)
)
def test_torchvision_vit_matches_torch_layout_reference(size):
  sd, x = sd_torchvision_vit(), images((2, 3, *size))
  assert_close(flax_features('vit_b_16', sd, x, **TV), ref_torchvision_vit(sd, x, heads=2))


@pytest.mark.parametrize(
  'arch,size',
  [
    ('dinov2_vits14', (70, 70)),  # the native 5 x 5 table, used as is
    ('dinov2_vits14', (28, 28)),  # 2 x 2: the offset-0.1 resize, shrinking
    ('dinov2_vits14', (98, 98)),  # 7 x 7: growing
    ('dinov2_vits14', (28, 98)),  # per axis
    ('dinov2_vits14_reg', (56, 56)),  # registers; the antialiased resize
    ('dinov2_vits14_reg', (56, 98)),
  ],
)
def test_dinov2_matches_torch_layout_reference(arch, size):
  registers = vit.CONFIGS[arch].registers
  sd, x = sd_dinov2(registers=registers), images((2, 3, *size))
  assert_close(flax_features(arch, sd, x, **DINO), ref_dinov2(sd, x, heads=2))


def test_dinov2_at_224_with_the_518_table():
  """The real grid sizes with a small width: the 37 x 37 table resized to 16 x 16."""
  sd, x = sd_dinov2(grid=37, depth=1), images((1, 3, 224, 224))
  kwargs = dict(DINO, depth=1, pretrain_size=518)
  assert_close(flax_features('dinov2_vits14', sd, x, **kwargs), ref_dinov2(sd, x, heads=2))


@pytest.mark.parametrize('arch', ['vit_b_16', 'dinov2_vits14_reg'])
def test_cls_mean_feature(arch):
  """feature_layer='cls_mean': the class token and the mean patch token (registers excluded), 2 x width."""
  if arch == 'vit_b_16':
    sd, x, kwargs, ref = sd_torchvision_vit(), images((2, 3, 32, 32)), TV, ref_torchvision_vit
  else:
    sd, x, kwargs, ref = sd_dinov2(registers=4), images((2, 3, 56, 56)), DINO, ref_dinov2
  features = flax_features(arch, sd, x, feature_layer='cls_mean', **kwargs)
  assert features.shape == (2, 64)
  assert_close(features, ref(sd, x, heads=2, feature='cls_mean'))
  assert_close(features[:, :32], flax_features(arch, sd, x, **kwargs))  # 'cls' = the first half


# torchvision's num_params minus `heads`; DINOv2's (the fetched code's torch.hub constructors,
# pretrained=False) minus `mask_token`.
FULL_SIZE = {
  'vit_b_16': (86_567_656 - 769_000, 768),
  'vit_l_16': (304_326_632 - 1_025_000, 1024),
  'dinov2_vits14': (22_056_576 - 384, 384),
  'dinov2_vitb14': (86_580_480 - 768, 768),
  'dinov2_vits14_reg': (22_058_112 - 384, 384),
  'dinov2_vitb14_reg': (86_583_552 - 768, 768),
}


@pytest.mark.parametrize('arch', sorted(FULL_SIZE))
def test_full_size_layout_shapes(arch):
  """Shape-only at 224x224: parameter count equals the reference's; features and codes have the right sizes."""
  num_params, num_features = FULL_SIZE[arch]
  model = nnx.eval_shape(lambda: backbones.HashNet(arch, 48, (224, 224, 3), rngs=nnx.Rngs(0)))
  _, params, rest = nnx.split(model.backbone, nnx.Param, ...)
  assert sum(int(np.prod(a.shape)) for a in jax.tree.leaves(params)) == num_params
  assert not jax.tree.leaves(rest)  # no BatchNorm statistics: nothing but parameters
  features, codes = nnx.eval_shape(
    lambda m, x: m(x, with_features=True), model, jax.ShapeDtypeStruct((2, 224, 224, 3), jnp.float32)
  )
  assert features.shape == (2, num_features) and codes.shape == (2, 48)
  assert arch in models.MODELS and f'dlbhc_{arch}' in models.MODELS


# ---------------------------------------------------------------------------------------------
# Conversion: round trip, checkpoint, errors.


def _f32(sd):
  return {k: np.asarray(v, np.float32) for k, v in sd.items()}


def test_conversion_round_trip_and_pretrained_build(tmp_path):
  """safetensors -> checkpoint -> models.build: every tensor arrives (transposed back, it is the source),
  the features equal the reference's, the hash head stays fresh."""
  sd = _f32(sd_dinov2(registers=4))
  src, dst = str(tmp_path / 'dino.safetensors'), str(tmp_path / 'w')
  save_file(sd, src)
  arch_kwargs = {k: v for k, v in DINO.items() if k != 'width'}
  meta = convert.convert('dinov2_vits14_reg', src, dst, width=DINO['width'], arch_kwargs=arch_kwargs)
  assert meta['arch_kwargs'] == arch_kwargs and meta['num_tensors'] == len(sd) - 1  # mask_token dropped
  config = dict(name='dinov2_vits14_reg', pretrained=dst, **DINO)
  graphdef, params = models.build(config, 16, (56, 56, 3), jax.random.key(0))
  assert not isinstance(graphdef, models.GraphDefWithConstants)  # BatchNorm-free: no constants
  model = nnx.eval_shape(lambda: backbones.HashNet('dinov2_vits14_reg', 16, (56, 56, 3), rngs=nnx.Rngs(0), **DINO))
  flat = backbones.flatten(params['backbone'])
  for layer in model.backbone.torch_layers:  # back to torch's layout, by hand
    path = '.'.join(map(str, layer.path))
    if layer.kind == 'tensor':
      np.testing.assert_array_equal(flat[path], sd[layer.prefix])
    elif layer.kind == 'conv':
      np.testing.assert_array_equal(flat[f'{path}.kernel'].transpose(3, 2, 0, 1), sd[f'{layer.prefix}.weight'])
    elif layer.kind == 'linear':
      np.testing.assert_array_equal(flat[f'{path}.kernel'].T, sd[f'{layer.prefix}.weight'])
    elif layer.kind == 'layernorm':
      np.testing.assert_array_equal(flat[f'{path}.scale'], sd[f'{layer.prefix}.weight'])
    else:
      assert layer.kind == 'layerscale'
      np.testing.assert_array_equal(flat[f'{path}.gamma'], sd[f'{layer.prefix}.gamma'])
    if layer.kind != 'tensor' and f'{layer.prefix}.bias' in sd:
      np.testing.assert_array_equal(flat[f'{path}.bias'], sd[f'{layer.prefix}.bias'])
  assert np.abs(params['head']['kernel']).max() > 0
  x = images((2, 3, 56, 56)).astype(np.float32)
  features, _ = jax.jit(lambda p, x: models.make_forward(graphdef)(p, x, train=False, with_features=True))(
    params, jnp.asarray(x.transpose(0, 2, 3, 1))
  )
  sd64 = {k: v.astype(np.float64) for k, v in sd.items()}
  assert_close(np.asarray(features, np.float64), ref_dinov2(sd64, x.astype(np.float64), heads=2))


def test_in_proj_converts_to_qkv():
  """torchvision's in_proj_weight (3 dim, dim) becomes the fused qkv kernel (dim, 3 dim): q | k | v columns."""
  sd = _f32(sd_torchvision_vit(grid=28))
  out = convert.convert_state_dict(
    'vit_b_16', sd, width=TV['width'], arch_kwargs={'depth': 2, 'num_heads': 2, 'patch_size': 8}
  )
  params = out['params']
  np.testing.assert_array_equal(
    params['blocks.1.attn.qkv.kernel'], sd['encoder.layers.encoder_layer_1.self_attention.in_proj_weight'].T
  )
  assert params['pos_embed'].shape == (1, 1 + 28 * 28, 32)  # 224 px / 8: the table converted at its own grid
  assert set(out) == {'params'} and not any(k.startswith('heads') for k in params)


def _skeleton(arch, cin=3):
  """A full-size state dict's keys, with the patch embedding at full shape and every other tensor a stub:
  enough for the variant check, which reads keys and that one shape."""
  config = vit.CONFIGS[arch]
  sd = sd_torchvision_vit(depth=config.depth) if config.family == 'torchvision' else sd_dinov2(depth=config.depth)
  sd = {k: np.zeros((1,), np.float32) for k in sd}
  key = 'conv_proj.weight' if config.family == 'torchvision' else 'patch_embed.proj.weight'
  sd[key] = np.zeros((config.hidden_dim, cin, config.patch_size, config.patch_size), np.float32)
  if config.registers:
    sd['register_tokens'] = np.zeros((1, config.registers, 1), np.float32)
  return sd


def test_another_variant_is_named():
  with pytest.raises(
    convert.ConversionError, match=r'is vit_l_16 \(.*width 1024, 24 blocks\), not vit_b_16: use --arch vit_l_16'
  ):
    convert.convert_state_dict('vit_b_16', _skeleton('vit_l_16'))
  with pytest.raises(convert.ConversionError, match='is dinov2_vitb14 .*, not dinov2_vits14'):
    convert.convert_state_dict('dinov2_vits14', _skeleton('dinov2_vitb14'))
  with pytest.raises(
    convert.ConversionError, match='is dinov2_vits14_reg .*4 register tokens.*use --arch dinov2_vits14_reg'
  ):
    convert.convert_state_dict('dinov2_vits14', _skeleton('dinov2_vits14_reg'))
  with pytest.raises(convert.ConversionError, match='is dinov2_vitb14 .*, not vit_b_16'):
    convert.convert_state_dict('vit_b_16', _skeleton('dinov2_vitb14'))


def test_undefined_variant_is_named():
  sd = _skeleton('vit_b_16')
  sd['conv_proj.weight'] = np.zeros((768, 3, 32, 32), np.float32)  # torchvision's vit_b_32
  with pytest.raises(
    convert.ConversionError, match=r'patch 32, width 768, 12 blocks, which is none of .*vit_b_16, vit_l_16'
  ):
    convert.convert_state_dict('vit_b_16', sd)


def test_unknown_arch_lists_valid_names():
  with pytest.raises(convert.ConversionError, match=r"unknown --arch 'vit_h_14'; valid: .*dinov2_vits14.*vit_b_16"):
    convert.convert_state_dict('vit_h_14', {})


def test_wrong_architecture_missing_and_misshaped_tensors_are_named():
  small = dict(width=TV['width'], arch_kwargs={'depth': 2, 'num_heads': 2, 'patch_size': 8, 'pretrain_size': 40})
  with pytest.raises(convert.ConversionError, match='does not look like torchvision vit_b_16.*cls_token'):
    convert.convert_state_dict('vit_b_16', sd_dinov2(patch=8), **small)
  sd = sd_torchvision_vit()
  del sd['encoder.layers.encoder_layer_1.mlp.3.bias']
  with pytest.raises(convert.ConversionError, match=r'missing tensor: encoder\.layers\.encoder_layer_1\.mlp\.3\.bias'):
    convert.convert_state_dict('vit_b_16', sd, **small)
  sd = sd_torchvision_vit(grid=6)  # a 48 px table for a model of 40 px
  with pytest.raises(
    convert.ConversionError, match=r'encoder\.pos_embedding: expected \(1, 26, 32\), got \(1, 37, 32\)'
  ):
    convert.convert_state_dict('vit_b_16', sd, **small)
  dino = dict(width=DINO['width'], arch_kwargs={'depth': 2, 'num_heads': 2, 'pretrain_size': 70})
  sd = sd_dinov2()
  del sd['blocks.0.ls2.gamma']
  with pytest.raises(convert.ConversionError, match=r'missing tensor: blocks\.0\.ls2\.gamma'):
    convert.convert_state_dict('dinov2_vits14', sd, **dino)
  with pytest.raises(convert.ConversionError, match='does not look like DINOv2 dinov2_vits14.*register_tokens'):
    convert.convert_state_dict('dinov2_vits14', sd_dinov2(registers=4), **dino)


def test_cli_reports_a_variant_mismatch_in_one_line(tmp_path, capsys):
  src = str(tmp_path / 'vit_l_16.safetensors')
  save_file(_skeleton('vit_l_16'), src)
  argv = ['convert', '--arch', 'vit_b_16', '--src', src, '--dst', str(tmp_path / 'out')]
  assert weights.main(argv) == 2
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and 'vit_l_16' in err and 'use --arch vit_l_16' in err
  assert not os.path.exists(tmp_path / 'out')
  assert weights.main(['convert', '--arch', 'vit_h_14', '--src', src, '--dst', str(tmp_path / 'out')]) == 2
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and "unknown --arch 'vit_h_14'" in err


# ---------------------------------------------------------------------------------------------
# Model options and training.


def test_constructor_errors_name_the_problem():
  with pytest.raises(
    ValueError, match=r'input 30x30 .* multiple of the 8 px patch; use e\.g\. --config\.image_size=32'
  ):
    backbones.HashNet('vit_b_16', 8, (30, 30, 3), rngs=nnx.Rngs(0), **TV)
  with pytest.raises(ValueError, match='multiple of num_heads=5'):
    backbones.HashNet('vit_b_16', 8, (32, 32, 3), rngs=nnx.Rngs(0), **dict(TV, num_heads=5))
  with pytest.raises(ValueError, match="unknown feature_layer 'pool'; valid: cls, cls_mean"):
    backbones.HashNet('dinov2_vits14', 8, (28, 28, 3), feature_layer='pool', rngs=nnx.Rngs(0), **DINO)


def test_head_is_linear_on_the_feature_by_default():
  """head_relu defaults to False for the transformers (a LayerNorm output), True for the CNNs."""
  graphdef, params = models.build(dict(name='vit_b_16', **TV), 12, (32, 32, 3), jax.random.key(0))
  x = jnp.asarray(images((2, 32, 32, 3)), jnp.float32)
  forward = models.make_forward(graphdef)
  features, codes = jax.jit(lambda p, x: forward(p, x, train=False, with_features=True))(params, x)
  assert (features < 0).any()
  w, b = params['head']['kernel'], params['head']['bias']
  np.testing.assert_allclose(codes, features @ w + b, rtol=1e-5, atol=1e-5)
  assert nnx.eval_shape(lambda: backbones.HashNet('resnet18', 8, (32, 32, 3), width=1 / 16, rngs=nnx.Rngs(0))).head_relu
  relu_model = nnx.eval_shape(
    lambda: backbones.HashNet('vit_b_16', 8, (32, 32, 3), head_relu=True, rngs=nnx.Rngs(0), **TV)
  )
  assert relu_model.head_relu


def test_gradients_reach_every_parameter():
  """Through attention, LayerScale, registers and the position-table resize (shrunk 5 x 5 -> 2 x 2)."""
  model = nnx.eval_shape(lambda: backbones.HashNet('dinov2_vits14_reg', 8, (28, 28, 3), rngs=nnx.Rngs(0), **DINO))
  graphdef, params = nnx.split(model, nnx.Param)
  rng = np.random.default_rng(0)
  params = jax.tree.map(lambda a: jnp.asarray(rng.normal(size=a.shape) * 0.3, a.dtype), nnx.to_pure_dict(params))
  x = jnp.asarray(images((2, 28, 28, 3)), jnp.float32)
  loss = lambda p: jnp.sum(nnx.merge(graphdef, p)(x, train=True, rng=jax.random.key(0)) ** 2)
  grads = jax.jit(jax.grad(loss))(params)
  for path, g in jax.tree_util.tree_leaves_with_path(grads):
    assert np.isfinite(g).all() and np.abs(g).max() > 0, jax.tree_util.keystr(path)


def test_bfloat16_matches_float32():
  x = jnp.asarray(images((2, 32, 32, 3)), jnp.float32)
  outputs = {}
  for dtype in ('float32', 'bfloat16'):
    graphdef, params = models.build(dict(name='vit_b_16', dtype=dtype, **TV), 12, (32, 32, 3), jax.random.key(0))
    forward = models.make_forward(graphdef)
    outputs[dtype] = jax.jit(lambda p, x: forward(p, x, train=False, with_features=True))(params, x)
  (f32, _), (f16, c16) = outputs['float32'], outputs['bfloat16']
  assert c16.dtype == jnp.float32 and np.isfinite(f16).all()
  np.testing.assert_allclose(f16, f32, atol=0.05 * float(np.abs(f32).max()))


def test_tiny_training_run_on_digits(tmp_path):
  """ViT-B/16 scaled down (width 32, 2 blocks, patch 8) on digits upsampled to 32 px, from converted
  weights for 1 channel (the 224 px table, 28 x 28, resized to 4 x 4 in the forward pass): the
  trainer's own path loads them, and the loss is finite and falls over 4 steps (the whole run with
  evaluation, from converted weights: test_weights.py)."""
  small = {k: v for k, v in TV.items() if k != 'pretrain_size'}
  sd = _f32(sd_torchvision_vit(grid=28, cin=1))
  src, dst = str(tmp_path / 'vit.safetensors'), str(tmp_path / 'w')
  save_file(sd, src)
  arch_kwargs = {k: v for k, v in small.items() if k != 'width'}
  convert.convert('vit_b_16', src, dst, width=small['width'], in_channels=1, arch_kwargs=arch_kwargs)
  overrides = {f'model.{k}': v for k, v in small.items()}
  config = helpers.tiny_dsh_config(
    **overrides,
    **{
      'model.name': 'vit_b_16',
      'model.pretrained': dst,
      'image_size': 32,
      'num_steps': 4,
      'log_every_steps': 2,
      'checkpoint.every_steps': 4,
    },
  )
  run = trainer.build(config)
  np.testing.assert_array_equal(run.state.params['model']['backbone']['cls_token'], sd['class_token'])
  state, losses = helpers.first_steps(config, 1, steps=4)  # trainer.build + its jitted step
  assert np.isfinite(losses).all() and losses[-1] < losses[0], losses
  moved = state.params['model']['backbone']['pos_embed'] - sd['encoder.pos_embedding']
  assert np.abs(moved).max() > 0  # the 28 x 28 table trains through the resize
