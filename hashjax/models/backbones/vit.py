"""Vision Transformers in Flax NNX: torchvision's ViT-B/16 and ViT-L/16, DINOv2's ViT-S/14 and ViT-B/14.

Both families are the same pre-norm encoder: patch embedding (a conv with kernel = stride = patch),
a class token, a learned position embedding, blocks `x + attn(norm1(x))`, `x + mlp(norm2(x))`
(multi-head self-attention from one fused qkv projection; MLP Linear-GELU(exact erf)-Linear),
a final LayerNorm; every LayerNorm has eps 1e-6. DINOv2 adds LayerScale (`x + gamma * f(x)`)
to both residual branches and, in the `_reg` variants, 4 register tokens after the class token.
No BatchNorm, and no dropout at these settings (both references default to rate 0; `train` and
`rng` are ignored). Module names: `patch_embed`, `cls_token`, `pos_embed`, `registers`,
`blocks.{i}.{norm1, attn.qkv, attn.proj, ls1, norm2, mlp.fc1, mlp.fc2, ls2}`, `norm`.

Layouts (`torch_layers` maps them; hashjax/weights.py converts):
  * torchvision (`torchvision.models.vision_transformer`): `conv_proj`, `class_token`,
    `encoder.pos_embedding`, `encoder.layers.encoder_layer_{i}.{ln_1, self_attention
    (in_proj_weight/in_proj_bias, out_proj), ln_2, mlp.0, mlp.3}`, `encoder.ln`; `heads.*` unused.
  * DINOv2 (facebookresearch/dinov2 `dinov2/models/vision_transformer.py`, the torch.hub layout
    with `block_chunks=0`): `patch_embed.proj`, `cls_token`, `pos_embed`, `register_tokens`,
    `blocks.{i}.{norm1, attn.qkv, attn.proj, ls1.gamma, norm2, mlp.fc1, mlp.fc2, ls2.gamma}`,
    `norm`; `mask_token` (masked pre-training only) unused.

Features (`feature_layer`): 'cls' (default), the class token after the final norm (torchvision's
input to `heads`; DINOv2's `x_norm_clstoken`); 'cls_mean', the class token concatenated with the
mean of the patch tokens after the final norm (DINOv2's linear-probe feature; registers excluded),
2 x the width.

Image size: height and width must be multiples of the patch (both references assert it). The
position table keeps the pre-training grid (`pretrain_size` / patch: 224 / 16 = 14 for torchvision,
518 / 14 = 37 for DINOv2) as its parameter; at another grid it is resized in the forward pass by a
fixed bicubic map (`layers.bicubic_matrix`), at the native grid it is used as is:
  * torchvision: as `torchvision.models.vision_transformer.interpolate_embeddings`, i.e.
    `F.interpolate(size=image_size // patch, mode='bicubic', align_corners=True)` (align_corners
    True is what torchvision's code does). Deviations: torchvision resizes the table once when
    loading weights into a model built for another size, and then trains the resized table; here
    the 14 x 14 table is the parameter and training updates it through the fixed resize (the same
    forward pass, a different parametrisation). torchvision only handles square images; here each
    axis is resized on its own (H / patch rows, W / patch columns).
  * DINOv2: as `DinoVisionTransformer.interpolate_pos_encoding` with the torch.hub settings:
    ViT-S/14 and ViT-B/14 use `interpolate_offset=0.1, interpolate_antialias=False`, i.e.
    `F.interpolate(scale_factor=((H/p + 0.1) / 37, (W/p + 0.1) / 37), mode='bicubic')` (the
    coordinate map uses the offset factor, not 37 / (H/p)); the `_reg` variants use offset 0 and
    antialias=True, i.e. `size=(H/p, W/p)` with torch's antialiased (PIL-style, a = -0.5) kernel.
    The resize runs in float32 whatever the compute dtype, as DINOv2's `.float()`.
"""

from __future__ import annotations

import dataclasses
import functools
import math

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np

from hashjax.models.backbones import layers

FEATURE_LAYERS = ('cls', 'cls_mean')
EPS = 1e-6  # every LayerNorm of both references


@dataclasses.dataclass(frozen=True)
class Config:
  """One variant: its layout family, patch size, width, depth, heads, MLP width, pre-training size."""

  family: str  # 'torchvision' | 'dinov2'
  patch_size: int
  hidden_dim: int
  depth: int
  num_heads: int
  mlp_dim: int
  pretrain_size: int  # the image size the position table was trained at (its grid = size // patch)
  registers: int = 0  # DINOv2's register tokens (the _reg variants)
  layer_scale: bool = False  # DINOv2's LayerScale on both residual branches


# torchvision's vit_b_16 / vit_l_16 and DINOv2's torch.hub dinov2_vit{s,b}14[_reg].
CONFIGS = {
  'vit_b_16': Config('torchvision', 16, 768, 12, 12, 3072, 224),
  'vit_l_16': Config('torchvision', 16, 1024, 24, 16, 4096, 224),
  'dinov2_vits14': Config('dinov2', 14, 384, 12, 6, 1536, 518, layer_scale=True),
  'dinov2_vitb14': Config('dinov2', 14, 768, 12, 12, 3072, 518, layer_scale=True),
  'dinov2_vits14_reg': Config('dinov2', 14, 384, 12, 6, 1536, 518, registers=4, layer_scale=True),
  'dinov2_vitb14_reg': Config('dinov2', 14, 768, 12, 12, 3072, 518, registers=4, layer_scale=True),
}

# The references' initialisation (used when training from scratch; converted weights replace it).
# torch's trunc_normal_(std=s) cuts at +-2 absolute, far beyond s here: a plain normal.
_TV_PATCH_INIT = nnx.initializers.variance_scaling(1.0, 'fan_in', 'normal')  # std 1/sqrt(fan_in)
_TORCH_DEFAULT_INIT = nnx.initializers.variance_scaling(1 / 3, 'fan_in', 'uniform')  # kaiming_uniform(a=sqrt(5))
_XAVIER = nnx.initializers.xavier_uniform()
_STD_002 = nnx.initializers.normal(0.02)  # trunc_normal_(std=0.02): cut at +-100 std
_STD_1E6 = nnx.initializers.normal(1e-6)
_ZEROS = nnx.initializers.zeros_init()


def _torch_default_bias(fan_in: int):
  """torch.nn.Conv2d's default bias init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (DINOv2's patch_embed)."""
  bound = 1.0 / math.sqrt(fan_in)
  return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


@functools.cache
def pos_embed_matrices(config: Config, native: int, grid: tuple[int, int]) -> tuple[np.ndarray, np.ndarray] | None:
  """(rows, cols) float32 bicubic maps from the `native` x `native` position grid to `grid`; None at
  the native grid (both references then use the table as is)."""
  if grid == (native, native):
    return None
  if config.family == 'torchvision':  # interpolate_embeddings
    return tuple(layers.bicubic_matrix(native, g, align_corners=True).astype(np.float32) for g in grid)
  if config.registers:  # hub: interpolate_offset=0, interpolate_antialias=True -> size=(h0, w0)
    return tuple(layers.bicubic_matrix(native, g, antialias=True).astype(np.float32) for g in grid)
  # hub: interpolate_offset=0.1, interpolate_antialias=False -> scale_factor=((h0 + 0.1) / M, ...)
  matrices = []
  for g in grid:
    factor = (g + 0.1) / native
    assert math.floor(native * factor) == g, (native, g)  # torch's output size; DINOv2 asserts the same
    matrices.append(layers.bicubic_matrix(native, g, scale_factor=factor).astype(np.float32))
  return tuple(matrices)


class LayerNorm(nnx.Module):
  """torch.nn.LayerNorm over the last axis (biased variance), statistics in float32."""

  def __init__(self, dim: int, *, eps: float = EPS, dtype=jnp.float32):
    self.scale = nnx.Param(jnp.ones((dim,), jnp.float32))
    self.bias = nnx.Param(jnp.zeros((dim,), jnp.float32))
    self.eps = eps
    self.dtype = dtype

  def __call__(self, x: jax.Array) -> jax.Array:
    x = x.astype(jnp.float32)
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
    y = (x - mean) * jax.lax.rsqrt(var + self.eps) * self.scale[...] + self.bias[...]
    return y.astype(self.dtype)


class LayerScale(nnx.Module):
  """DINOv2's LayerScale: x * gamma (the torch.hub models are built with init_values=1.0)."""

  def __init__(self, dim: int, *, init: float = 1.0, dtype=jnp.float32):
    self.gamma = nnx.Param(jnp.full((dim,), init, jnp.float32))
    self.dtype = dtype

  def __call__(self, x: jax.Array) -> jax.Array:
    return x * self.gamma[...].astype(self.dtype)


class Attention(nnx.Module):
  """Multi-head self-attention from a fused (dim -> 3 dim) projection, q | k | v each `heads` x head_dim.

  torch's nn.MultiheadAttention (in_proj_weight rows q, k, v) and DINOv2's `qkv` Linear (reshaped
  to (3, heads, head_dim)) are the same map; softmax(q k^T / sqrt(head_dim)) v, then `proj`.
  """

  def __init__(self, dim: int, num_heads: int, *, family: str, dtype, rngs: nnx.Rngs):
    if family == 'torchvision':  # in_proj xavier_uniform, out_proj torch.nn.Linear's default; biases 0
      qkv_init, proj_init = _XAVIER, _TORCH_DEFAULT_INIT
    else:  # DINOv2's init_weights_vit_timm: every Linear trunc_normal(0.02), bias 0
      qkv_init = proj_init = _STD_002
    self.qkv = layers.linear(dim, 3 * dim, dtype=dtype, rngs=rngs, kernel_init=qkv_init)
    self.proj = layers.linear(dim, dim, dtype=dtype, rngs=rngs, kernel_init=proj_init)
    self.num_heads = num_heads

  def __call__(self, x: jax.Array) -> jax.Array:
    b, n, d = x.shape
    q, k, v = jnp.unstack(self.qkv(x).reshape(b, n, 3, self.num_heads, d // self.num_heads), axis=2)
    return self.proj(jax.nn.dot_product_attention(q, k, v).reshape(b, n, d))


class Mlp(nnx.Module):
  """Linear -> GELU (exact, erf) -> Linear."""

  def __init__(self, dim: int, hidden: int, *, family: str, dtype, rngs: nnx.Rngs):
    if family == 'torchvision':  # MLPBlock: xavier_uniform weights, N(0, 1e-6) biases
      kw = dict(kernel_init=_XAVIER, bias_init=_STD_1E6)
    else:
      kw = dict(kernel_init=_STD_002)
    self.fc1 = layers.linear(dim, hidden, dtype=dtype, rngs=rngs, **kw)
    self.fc2 = layers.linear(hidden, dim, dtype=dtype, rngs=rngs, **kw)

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.fc2(jax.nn.gelu(self.fc1(x), approximate=False))


class Block(nnx.Module):
  """Pre-norm encoder block: x + [ls1] attn(norm1(x)), then x + [ls2] mlp(norm2(x))."""

  def __init__(self, config: Config, dim: int, num_heads: int, mlp_dim: int, *, dtype, rngs: nnx.Rngs):
    kw = dict(family=config.family, dtype=dtype, rngs=rngs)
    self.norm1 = LayerNorm(dim, dtype=dtype)
    self.attn = Attention(dim, num_heads, **kw)
    self.norm2 = LayerNorm(dim, dtype=dtype)
    self.mlp = Mlp(dim, mlp_dim, **kw)
    self.layer_scale = config.layer_scale
    if config.layer_scale:
      self.ls1 = LayerScale(dim, dtype=dtype)
      self.ls2 = LayerScale(dim, dtype=dtype)

  def torch_layers(self, family: str, i: int) -> list[layers.TorchLayer]:
    path = ('blocks', i)
    if family == 'torchvision':
      p = f'encoder.layers.encoder_layer_{i}'
      return [
        layers.TorchLayer(f'{p}.ln_1', path + ('norm1',), 'layernorm'),
        layers.TorchLayer(f'{p}.self_attention', path + ('attn', 'qkv'), 'in_proj'),
        layers.TorchLayer(f'{p}.self_attention.out_proj', path + ('attn', 'proj'), 'linear'),
        layers.TorchLayer(f'{p}.ln_2', path + ('norm2',), 'layernorm'),
        layers.TorchLayer(f'{p}.mlp.0', path + ('mlp', 'fc1'), 'linear'),
        layers.TorchLayer(f'{p}.mlp.3', path + ('mlp', 'fc2'), 'linear'),
      ]
    p = f'blocks.{i}'
    return [
      layers.TorchLayer(f'{p}.norm1', path + ('norm1',), 'layernorm'),
      layers.TorchLayer(f'{p}.attn.qkv', path + ('attn', 'qkv'), 'linear'),
      layers.TorchLayer(f'{p}.attn.proj', path + ('attn', 'proj'), 'linear'),
      layers.TorchLayer(f'{p}.ls1', path + ('ls1',), 'layerscale'),
      layers.TorchLayer(f'{p}.norm2', path + ('norm2',), 'layernorm'),
      layers.TorchLayer(f'{p}.mlp.fc1', path + ('mlp', 'fc1'), 'linear'),
      layers.TorchLayer(f'{p}.mlp.fc2', path + ('mlp', 'fc2'), 'linear'),
      layers.TorchLayer(f'{p}.ls2', path + ('ls2',), 'layerscale'),
    ]

  def __call__(self, x: jax.Array) -> jax.Array:
    y = self.attn(self.norm1(x))
    x = x + (self.ls1(y) if self.layer_scale else y)
    y = self.mlp(self.norm2(x))
    return x + (self.ls2(y) if self.layer_scale else y)


class VisionTransformer(nnx.Module):
  """A ViT up to the final norm; `features` is its class token (or class + mean patch token).

  `width` scales the hidden and MLP widths (1.0 = the real network; the hidden width must stay a
  multiple of the head count); `depth`, `num_heads`, `patch_size` and `pretrain_size` override the
  variant's (None = the real network's), for small test networks.
  """

  def __init__(
    self,
    arch: str,
    image_shape: tuple[int, int, int],
    *,
    width: float = 1.0,
    feature_layer: str = 'cls',
    depth: int | None = None,
    num_heads: int | None = None,
    patch_size: int | None = None,
    pretrain_size: int | None = None,
    dtype=jnp.float32,
    rngs: nnx.Rngs,
  ):
    if arch not in CONFIGS:
      raise ValueError(f'unknown vision transformer {arch!r}; valid: {", ".join(CONFIGS)}')
    if feature_layer not in FEATURE_LAYERS:
      raise ValueError(f'{arch}: unknown feature_layer {feature_layer!r}; valid: {", ".join(FEATURE_LAYERS)}')
    config = CONFIGS[arch]
    depth = config.depth if depth is None else depth
    num_heads = config.num_heads if num_heads is None else num_heads
    patch = config.patch_size if patch_size is None else patch_size
    pretrain_size = config.pretrain_size if pretrain_size is None else pretrain_size
    dim, mlp_dim = layers.scaled(config.hidden_dim, width), layers.scaled(config.mlp_dim, width)
    if dim % num_heads:
      raise ValueError(f'{arch}: hidden width {dim} (width={width}) is not a multiple of num_heads={num_heads}')
    h, w, channels = image_shape
    if h % patch or w % patch or pretrain_size % patch:
      raise ValueError(
        f'{arch}: input {h}x{w} (pre-training size {pretrain_size}) is not a multiple of the {patch} px '
        f'patch; use e.g. --config.image_size={max(patch, round(h / patch) * patch)}'
      )
    self.grid, self.native_grid = (h // patch, w // patch), pretrain_size // patch
    native = self.native_grid
    pos_embed_matrices(config, native, self.grid)  # fails here, not in the forward pass, if it cannot

    patch_init = _TV_PATCH_INIT if config.family == 'torchvision' else _TORCH_DEFAULT_INIT
    self.patch_embed = nnx.Conv(
      channels,
      dim,
      (patch, patch),
      strides=patch,
      padding='VALID',
      kernel_init=patch_init,
      bias_init=_ZEROS if config.family == 'torchvision' else _torch_default_bias(channels * patch * patch),
      dtype=dtype,
      param_dtype=jnp.float32,
      rngs=rngs,
    )
    key = rngs.params()
    if config.family == 'torchvision':  # class token zeros, position table N(0, 0.02)
      self.cls_token = nnx.Param(jnp.zeros((1, 1, dim), jnp.float32))
    else:  # cls_token N(0, 1e-6), pos_embed trunc_normal(0.02)
      self.cls_token = nnx.Param(_STD_1E6(jax.random.fold_in(key, 0), (1, 1, dim), jnp.float32))
    self.pos_embed = nnx.Param(_STD_002(jax.random.fold_in(key, 1), (1, native * native + 1, dim), jnp.float32))
    if config.registers:
      self.registers = nnx.Param(_STD_1E6(jax.random.fold_in(key, 2), (1, config.registers, dim), jnp.float32))
    self.blocks = nnx.List([Block(config, dim, num_heads, mlp_dim, dtype=dtype, rngs=rngs) for _ in range(depth)])
    self.norm = LayerNorm(dim, dtype=dtype)

    tv = config.family == 'torchvision'
    torch_layers = [
      layers.TorchLayer('conv_proj' if tv else 'patch_embed.proj', ('patch_embed',), 'conv'),
      layers.TorchLayer('class_token' if tv else 'cls_token', ('cls_token',), 'tensor'),
      layers.TorchLayer('encoder.pos_embedding' if tv else 'pos_embed', ('pos_embed',), 'tensor'),
    ]
    if config.registers:
      torch_layers.append(layers.TorchLayer('register_tokens', ('registers',), 'tensor'))
    for i, block in enumerate(self.blocks):
      torch_layers += block.torch_layers(config.family, i)
    torch_layers.append(layers.TorchLayer('encoder.ln' if tv else 'norm', ('norm',), 'layernorm'))
    self.torch_layers = tuple(torch_layers)
    self.arch = arch
    self.config = config
    self.num_registers = config.registers
    self.feature_layer = feature_layer
    self.num_features = 2 * dim if feature_layer == 'cls_mean' else dim
    self.dtype = dtype

  def position_embedding(self) -> jax.Array:
    """(1, 1 + grid tokens, dim) float32: the table, resized to this input's grid if it differs."""
    table = self.pos_embed[...]
    matrices = pos_embed_matrices(self.config, self.native_grid, self.grid)
    if matrices is None:
      return table
    rows, cols = matrices
    patches = table[0, 1:].reshape(self.native_grid, self.native_grid, -1)
    patches = jnp.einsum('ia,jb,abd->ijd', rows, cols, patches, precision=jax.lax.Precision.HIGHEST)
    return jnp.concatenate([table[:, :1], patches.reshape(1, -1, table.shape[-1])], axis=1)

  def tokens(self, x: jax.Array) -> jax.Array:
    """(B, 1 + registers + patches, dim): the sequence after the final norm."""
    x = self.patch_embed(x.astype(self.dtype))  # (B, H/p, W/p, dim); row-major = torch's flatten(2)
    if tuple(x.shape[1:3]) != self.grid:  # the position table was resized for the built image size
      raise ValueError(f'{self.arch}: built for a {self.grid} patch grid, got images giving {tuple(x.shape[1:3])}')
    b = x.shape[0]
    x = x.reshape(b, -1, x.shape[-1])
    cls = jnp.broadcast_to(self.cls_token[...].astype(self.dtype), (b, 1, x.shape[-1]))
    x = jnp.concatenate([cls, x], axis=1) + self.position_embedding().astype(self.dtype)
    if self.num_registers:  # DINOv2: registers after the class token, without position embedding
      registers = jnp.broadcast_to(self.registers[...].astype(self.dtype), (b, self.num_registers, x.shape[-1]))
      x = jnp.concatenate([x[:, :1], registers, x[:, 1:]], axis=1)
    for block in self.blocks:
      x = block(x)
    return self.norm(x)

  def features(self, x: jax.Array, *, train: bool = False, rng: jax.Array | None = None) -> jax.Array:
    del train, rng  # no dropout (both references' rates are 0) and no BatchNorm
    x = self.tokens(x)
    if self.feature_layer == 'cls':
      return x[:, 0]
    patch_mean = jnp.mean(x[:, 1 + self.num_registers :].astype(jnp.float32), axis=1).astype(self.dtype)
    return jnp.concatenate([x[:, 0], patch_mean], axis=-1)


def identify(state: dict) -> tuple[str | None, str | None, str]:
  """(variant name or None, family or None, description) of a torch-layout ViT state dict, from its
  keys and the patch embedding's shape: which CONFIGS entry it is, if any."""
  if 'conv_proj.weight' in state:
    family, kernel, prefix = 'torchvision', state['conv_proj.weight'], 'encoder.layers.encoder_layer_'
  elif 'patch_embed.proj.weight' in state:
    family, kernel, prefix = 'dinov2', state['patch_embed.proj.weight'], 'blocks.'
  else:
    return None, None, 'no ViT patch embedding (conv_proj / patch_embed.proj)'
  depth = len({k[len(prefix) :].split('.')[0] for k in state if k.startswith(prefix)})
  registers = int(state['register_tokens'].shape[1]) if 'register_tokens' in state else 0
  dim, patch = int(kernel.shape[0]), int(kernel.shape[-1])
  description = f'a {family} ViT: patch {patch}, width {dim}, {depth} blocks' + (
    f', {registers} register tokens' if registers else ''
  )
  for name, c in CONFIGS.items():
    if (c.family, c.patch_size, c.hidden_dim, c.depth, c.registers) == (family, patch, dim, depth, registers):
      return name, family, description
  return None, family, description
