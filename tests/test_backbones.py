"""ImageNet backbones: the Flax forward pass of converted torchvision-layout weights equals a NumPy
reference that runs the same state dict in torch's layout (NCHW, OIHW, channel-major flatten).

State dicts are random, drawn here from torchvision's key names and shapes (written out
independently of the models' own `torch_layers`), at reduced width and small inputs; the
full-size layouts are checked by shape only (parameter counts equal torchvision's).
Tolerance: float32 Flax vs float64 NumPy, |flax - ref| <= 1e-4 * max|ref| + 1e-4 * |ref|.
"""

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hashjax import models
from hashjax.models import backbones
from hashjax.models.backbones import convert
from hashjax.models.backbones import googlenet as googlenet_lib
from hashjax.models.backbones import layers
from hashjax.models.backbones import vgg as vgg_lib

# ---------------------------------------------------------------------------------------------
# NumPy reference, torch layout.


def ref_conv(x, w, b=None, stride=1, pad=0):
  x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
  _, _, h, wd = x.shape
  o, _, kh, kw = w.shape
  oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
  out = np.zeros((x.shape[0], o, oh, ow))
  for i in range(kh):
    for j in range(kw):
      patch = x[:, :, i : i + stride * (oh - 1) + 1 : stride, j : j + stride * (ow - 1) + 1 : stride]
      out += np.einsum('nchw,oc->nohw', patch, w[:, :, i, j])
  return out if b is None else out + b[None, :, None, None]


def ref_max_pool(x, k, s, p=0, ceil=False):
  n, c, h, w = x.shape

  def size(sz):
    o = (sz + 2 * p - k + (s - 1 if ceil else 0)) // s + 1
    return o - 1 if ceil and (o - 1) * s >= sz + p else o

  oh, ow = size(h), size(w)
  xp = np.full((n, c, h + 2 * p + k, w + 2 * p + k), -np.inf)
  xp[:, :, p : p + h, p : p + w] = x
  out = np.empty((n, c, oh, ow))
  for i in range(oh):
    for j in range(ow):
      out[:, :, i, j] = xp[:, :, i * s : i * s + k, j * s : j * s + k].max(axis=(2, 3))
  return out


def ref_adaptive_avg_pool(x, o):
  n, c, h, w = x.shape
  out = np.empty((n, c, o, o))
  for i in range(o):
    for j in range(o):
      r0, r1 = int(np.floor(i * h / o)), int(np.ceil((i + 1) * h / o))
      c0, c1 = int(np.floor(j * w / o)), int(np.ceil((j + 1) * w / o))
      out[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
  return out


def ref_bn(x, sd, prefix, eps=1e-5):
  g, b = sd[f'{prefix}.weight'], sd[f'{prefix}.bias']
  m, v = sd[f'{prefix}.running_mean'], sd[f'{prefix}.running_var']
  bc = lambda a: a[None, :, None, None]
  return (x - bc(m)) / np.sqrt(bc(v) + eps) * bc(g) + bc(b)


def ref_lrn(x, size, alpha, beta, k):
  c = x.shape[1]
  sq = np.pad(x**2, ((0, 0), (size // 2, (size - 1) // 2), (0, 0), (0, 0)))
  div = sum(sq[:, i : i + c] for i in range(size))
  return x / (k + alpha / size * div) ** beta


def ref_linear(x, sd, prefix):
  return x @ sd[f'{prefix}.weight'].T + sd[f'{prefix}.bias']


relu = lambda x: np.maximum(x, 0)


def ref_vgg(sd, cfg, batch_norm, x):
  i = 0
  for v in cfg:
    if v == 'M':
      x, i = ref_max_pool(x, 2, 2), i + 1
      continue
    x = ref_conv(x, sd[f'features.{i}.weight'], sd[f'features.{i}.bias'], pad=1)
    if batch_norm:
      x = ref_bn(x, sd, f'features.{i + 1}')
    x, i = relu(x), i + (3 if batch_norm else 2)
  x = ref_adaptive_avg_pool(x, 7).reshape(x.shape[0], -1)
  return ref_linear(relu(ref_linear(x, sd, 'classifier.0')), sd, 'classifier.3')


def ref_alexnet(sd, x):
  c = lambda x, i, **kw: relu(ref_conv(x, sd[f'features.{i}.weight'], sd[f'features.{i}.bias'], **kw))
  x = ref_max_pool(c(x, 0, stride=4, pad=2), 3, 2)
  x = ref_max_pool(c(x, 3, pad=2), 3, 2)
  x = ref_max_pool(c(c(c(x, 6, pad=1), 8, pad=1), 10, pad=1), 3, 2)
  x = ref_adaptive_avg_pool(x, 6).reshape(x.shape[0], -1)
  return ref_linear(relu(ref_linear(x, sd, 'classifier.1')), sd, 'classifier.4')


def ref_vgg_f(sd, x):
  c = lambda x, i, **kw: relu(ref_conv(x, sd[f'features.{i}.weight'], sd[f'features.{i}.bias'], **kw))
  lrn = lambda x: ref_lrn(x, 5, 5e-4, 0.75, 2.0)
  x = ref_max_pool(lrn(c(x, 0, stride=4)), 3, 2, ceil=True)
  x = ref_max_pool(lrn(c(x, 4, pad=2)), 3, 2, ceil=True)
  x = ref_max_pool(c(c(c(x, 8, pad=1), 10, pad=1), 12, pad=1), 3, 2, ceil=True)
  x = ref_adaptive_avg_pool(x, 6).reshape(x.shape[0], -1)
  return ref_linear(relu(ref_linear(x, sd, 'classifier.0')), sd, 'classifier.3')


def ref_resnet(sd, kind, depths, x):
  x = relu(ref_bn(ref_conv(x, sd['conv1.weight'], stride=2, pad=3), sd, 'bn1'))
  x = ref_max_pool(x, 3, 2, 1)
  for s, depth in enumerate(depths):
    for j in range(depth):
      p, stride = f'layer{s + 1}.{j}', 2 if s > 0 and j == 0 else 1
      if kind == 'basic':
        y = relu(ref_bn(ref_conv(x, sd[f'{p}.conv1.weight'], stride=stride, pad=1), sd, f'{p}.bn1'))
        y = ref_bn(ref_conv(y, sd[f'{p}.conv2.weight'], pad=1), sd, f'{p}.bn2')
      else:
        y = relu(ref_bn(ref_conv(x, sd[f'{p}.conv1.weight']), sd, f'{p}.bn1'))
        y = relu(ref_bn(ref_conv(y, sd[f'{p}.conv2.weight'], stride=stride, pad=1), sd, f'{p}.bn2'))
        y = ref_bn(ref_conv(y, sd[f'{p}.conv3.weight']), sd, f'{p}.bn3')
      if f'{p}.downsample.0.weight' in sd:
        x = ref_bn(ref_conv(x, sd[f'{p}.downsample.0.weight'], stride=stride), sd, f'{p}.downsample.1')
      x = relu(y + x)
  return x.mean(axis=(2, 3))


def ref_googlenet(sd, x):
  mean, std = np.array(googlenet_lib.IMAGENET_MEAN), np.array(googlenet_lib.IMAGENET_STD)
  x = x * (std / 0.5)[None, :, None, None] + ((mean - 0.5) / 0.5)[None, :, None, None]
  bc = lambda x, p, pad=0, stride=1: relu(
    ref_bn(ref_conv(x, sd[f'{p}.conv.weight'], stride=stride, pad=pad), sd, f'{p}.bn', eps=1e-3)
  )
  x = ref_max_pool(bc(x, 'conv1', 3, 2), 3, 2, ceil=True)
  x = ref_max_pool(bc(bc(x, 'conv2'), 'conv3', 1), 3, 2, ceil=True)
  for name in googlenet_lib.INCEPTIONS:
    if name == '4a':
      x = ref_max_pool(x, 3, 2, ceil=True)
    if name == '5a':
      x = ref_max_pool(x, 2, 2, ceil=True)
    p = f'inception{name}'
    x = np.concatenate(
      [
        bc(x, f'{p}.branch1'),
        bc(bc(x, f'{p}.branch2.0'), f'{p}.branch2.1', 1),
        bc(bc(x, f'{p}.branch3.0'), f'{p}.branch3.1', 1),
        bc(ref_max_pool(x, 3, 1, 1, ceil=True), f'{p}.branch4.1'),
      ],
      axis=1,
    )
  return x.mean(axis=(2, 3))


# ---------------------------------------------------------------------------------------------
# Random torchvision-layout state dicts (names and shapes as torchvision's, with the ImageNet
# classifier included so the converter must drop it).


class StateDict:
  def __init__(self, seed):
    self.rng, self.sd = np.random.default_rng(seed), {}

  def conv(self, name, cin, cout, k, bias=True):
    self.sd[f'{name}.weight'] = self.rng.normal(size=(cout, cin, k, k)) * np.sqrt(2.0 / (cin * k * k))
    if bias:
      self.sd[f'{name}.bias'] = self.rng.normal(size=cout) * 0.1

  def linear(self, name, fin, fout):
    self.sd[f'{name}.weight'] = self.rng.normal(size=(fout, fin)) * np.sqrt(2.0 / fin)
    self.sd[f'{name}.bias'] = self.rng.normal(size=fout) * 0.1

  def bn(self, name, c):
    self.sd[f'{name}.weight'] = 1 + 0.2 * self.rng.normal(size=c)
    self.sd[f'{name}.bias'] = 0.2 * self.rng.normal(size=c)
    self.sd[f'{name}.running_mean'] = 0.2 * self.rng.normal(size=c)
    self.sd[f'{name}.running_var'] = self.rng.uniform(0.5, 2.0, size=c)
    self.sd[f'{name}.num_batches_tracked'] = np.array(7, np.int64)


def sd_vgg(cfg, batch_norm, width, cin=3, seed=0):
  s, i, c = StateDict(seed), 0, cin
  for v in cfg:
    if v == 'M':
      i += 1
      continue
    out = layers.scaled(v, width)
    s.conv(f'features.{i}', c, out, 3)
    if batch_norm:
      s.bn(f'features.{i + 1}', out)
    c, i = out, i + (3 if batch_norm else 2)
  hidden = layers.scaled(4096, width)
  s.linear('classifier.0', c * 49, hidden)
  s.linear('classifier.3', hidden, hidden)
  s.linear('classifier.6', hidden, 10)
  return s.sd


def sd_alexnet(width, cin=3, vgg_f=False, seed=0):
  s = StateDict(seed)
  kernels = (11, 5, 3, 3, 3)
  if vgg_f:  # hashjax's layout for VGG-F (alexnet.py docstring)
    chans, idx, fc = (64, 256, 256, 256, 256), (0, 4, 8, 10, 12), ('classifier.0', 'classifier.3', 'classifier.6')
  else:
    chans, idx, fc = (64, 192, 384, 256, 256), (0, 3, 6, 8, 10), ('classifier.1', 'classifier.4', 'classifier.6')
  c = cin
  for ch, i, k in zip(chans, idx, kernels):
    s.conv(f'features.{i}', c, layers.scaled(ch, width), k)
    c = layers.scaled(ch, width)
  hidden = layers.scaled(4096, width)
  s.linear(fc[0], c * 36, hidden)
  s.linear(fc[1], hidden, hidden)
  s.linear(fc[2], hidden, 10)
  return s.sd


def sd_resnet(kind, depths, width, cin=3, seed=0):
  s, expansion = StateDict(seed), 1 if kind == 'basic' else 4
  c = layers.scaled(64, width)
  s.conv('conv1', cin, c, 7, bias=False)
  s.bn('bn1', c)
  for st, depth in enumerate(depths):
    planes = layers.scaled(64 * 2**st, width)
    for j in range(depth):
      p, stride = f'layer{st + 1}.{j}', 2 if st > 0 and j == 0 else 1
      if kind == 'basic':
        s.conv(f'{p}.conv1', c, planes, 3, bias=False)
        s.bn(f'{p}.bn1', planes)
        s.conv(f'{p}.conv2', planes, planes, 3, bias=False)
        s.bn(f'{p}.bn2', planes)
      else:
        s.conv(f'{p}.conv1', c, planes, 1, bias=False)
        s.bn(f'{p}.bn1', planes)
        s.conv(f'{p}.conv2', planes, planes, 3, bias=False)
        s.bn(f'{p}.bn2', planes)
        s.conv(f'{p}.conv3', planes, planes * 4, 1, bias=False)
        s.bn(f'{p}.bn3', planes * 4)
      if stride != 1 or c != planes * expansion:
        s.conv(f'{p}.downsample.0', c, planes * expansion, 1, bias=False)
        s.bn(f'{p}.downsample.1', planes * expansion)
      c = planes * expansion
  s.linear('fc', c, 10)
  return s.sd


def sd_googlenet(width, seed=0):
  s = StateDict(seed)
  w = lambda n: layers.scaled(n, width)

  def bc(name, cin, cout, k):
    s.conv(f'{name}.conv', cin, cout, k, bias=False)
    s.bn(f'{name}.bn', cout)

  bc('conv1', 3, w(64), 7)
  bc('conv2', w(64), w(64), 1)
  bc('conv3', w(64), w(192), 3)
  c = w(192)
  for name, (c1, c3r, c3, c5r, c5, cp) in googlenet_lib.INCEPTIONS.items():
    p = f'inception{name}'
    bc(f'{p}.branch1', c, w(c1), 1)
    bc(f'{p}.branch2.0', c, w(c3r), 1)
    bc(f'{p}.branch2.1', w(c3r), w(c3), 3)
    bc(f'{p}.branch3.0', c, w(c5r), 1)
    bc(f'{p}.branch3.1', w(c5r), w(c5), 3)
    bc(f'{p}.branch4.1', c, w(cp), 1)
    c = w(c1) + w(c3) + w(c5) + w(cp)
  bc('aux1.conv', c, 4, 1)  # aux heads: present in torchvision's file, unused
  s.linear('aux2.fc1', 8, 4)
  s.linear('fc', c, 10)
  return s.sd


def flax_features(arch, sd, width, x_nchw, **model_kwargs):
  """Backbone features of `arch` with `sd` converted, on NCHW input (transposed to NHWC)."""
  converted = convert.convert_state_dict(arch, sd, width=width, in_channels=x_nchw.shape[1])
  shape = (x_nchw.shape[2], x_nchw.shape[3], x_nchw.shape[1])
  model = nnx.eval_shape(lambda: backbones.HashNet(arch, 8, shape, width=width, rngs=nnx.Rngs(0), **model_kwargs))
  graphdef, params, stats = nnx.split(model, nnx.Param, ...)
  params, stats = nnx.to_pure_dict(params), nnx.to_pure_dict(stats)
  params = dict(
    params,
    backbone=backbones.fill(params['backbone'], converted['params']),
    head=jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), params['head']),
  )
  if stats:
    stats = dict(stats, backbone=backbones.fill(stats['backbone'], converted['batch_stats']))
  x = jnp.asarray(x_nchw.transpose(0, 2, 3, 1), jnp.float32)
  run = jax.jit(lambda p, s, x: nnx.merge(graphdef, p, s).features(x))
  return np.asarray(run(params, stats, x), np.float64)


def assert_close(flax, ref):
  np.testing.assert_allclose(flax, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def images(shape, seed=1):
  return np.random.default_rng(seed).normal(size=shape)


# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize('arch', ['vgg16', 'vgg11_bn', 'vgg19'])
def test_vgg_matches_torch_layout_reference(arch):
  cfg, batch_norm = vgg_lib.CONFIGS[arch]
  width, x = 1 / 16, images((2, 3, 64, 64))  # 64 -> 2x2 after five pools -> adaptive 7x7, overlapping
  sd = sd_vgg(cfg, batch_norm, width)
  assert_close(flax_features(arch, sd, width, x), ref_vgg(sd, cfg, batch_norm, x))


@pytest.mark.parametrize('size', [100, 224])  # 224: the adaptive pool is the identity (6x6)
def test_alexnet_matches_torch_layout_reference(size):
  width, x = 1 / 16, images((2, 3, size, size))
  sd = sd_alexnet(width)
  assert_close(flax_features('alexnet', sd, width, x), ref_alexnet(sd, x))


def test_vgg_f_matches_torch_layout_reference():
  width, x = 1 / 16, images((2, 3, 120, 120))
  sd = sd_alexnet(width, vgg_f=True)
  assert_close(flax_features('vgg_f', sd, width, x), ref_vgg_f(sd, x))


@pytest.mark.parametrize(
  'arch,kind,depths,width',
  [('resnet18', 'basic', (2, 2, 2, 2), 1 / 8), ('resnet50', 'bottleneck', (3, 4, 6, 3), 1 / 16)],
)
def test_resnet_matches_torch_layout_reference(arch, kind, depths, width):
  x = images((2, 3, 64, 64))
  sd = sd_resnet(kind, depths, width)
  assert_close(flax_features(arch, sd, width, x), ref_resnet(sd, kind, depths, x))


def test_googlenet_matches_torch_layout_reference():
  width, x = 1 / 8, images((2, 3, 64, 64))
  sd = sd_googlenet(width)
  assert_close(flax_features('googlenet', sd, width, x), ref_googlenet(sd, x))


# torchvision's parameter counts (torchvision docs, "num_params") minus the ImageNet classifier.
FULL_SIZE = {
  'alexnet': (61_100_840 - 4_097_000, 4096),
  'vgg11_bn': (132_868_840 - 4_097_000, 4096),
  'vgg16': (138_357_544 - 4_097_000, 4096),
  'vgg19': (143_667_240 - 4_097_000, 4096),
  'resnet18': (11_689_512 - 513_000, 512),
  'resnet50': (25_557_032 - 2_049_000, 2048),
  'googlenet': (6_624_904 - 1_025_000, 1024),
  'vgg11': (132_863_336 - 4_097_000, 4096),
  'vgg16_bn': (138_365_992 - 4_097_000, 4096),
  'vgg19_bn': (143_678_248 - 4_097_000, 4096),
  'resnet34': (21_797_672 - 513_000, 512),
  'resnet101': (44_549_160 - 2_049_000, 2048),
  # VGG-F: no torchvision model; Chatfield et al.'s layer sizes (conv 64/256/256/256/256, fc 4096/4096).
  'vgg_f': (23_296 + 409_856 + 3 * 590_080 + 37_752_832 + 16_781_312, 4096),
}


@pytest.mark.parametrize('arch', sorted(FULL_SIZE))
def test_full_size_layout_shapes(arch):
  """Shape-only at 224x224: parameter count equals torchvision's; features and codes have the right sizes."""
  num_params, num_features = FULL_SIZE[arch]
  model = nnx.eval_shape(lambda: backbones.HashNet(arch, 48, (224, 224, 3), rngs=nnx.Rngs(0)))
  _, params, _ = nnx.split(model.backbone, nnx.Param, ...)
  assert sum(int(np.prod(a.shape)) for a in jax.tree.leaves(params)) == num_params
  features, codes = nnx.eval_shape(
    lambda m, x: m(x, with_features=True), model, jax.ShapeDtypeStruct((2, 224, 224, 3), jnp.float32)
  )
  assert features.shape == (2, num_features) and codes.shape == (2, 48)


def test_registered_models_build_by_name():
  for name in ('alexnet', 'vgg_f', 'vgg11_bn', 'vgg16', 'vgg19', 'resnet18', 'resnet50', 'googlenet'):
    assert name in models.MODELS and name in models.BACKBONE_MODELS
  model = nnx.eval_shape(lambda: models.MODELS['vgg16'](16, (224, 224, 3), dtype=jnp.float32, rngs=nnx.Rngs(0)))
  assert model.arch == 'vgg16' and model.backbone.fc6.kernel.shape == (25088, 4096)


def _small_vgg(**kwargs):
  config = dict(name='vgg11_bn', width=1 / 16, **kwargs)
  graphdef, params = models.build(config, 12, (32, 32, 3), jax.random.key(0))
  return graphdef, params, models.make_forward(graphdef)


def test_dropout_active_only_in_training_and_needs_rng():
  _, params, forward = _small_vgg()
  x = jnp.asarray(images((4, 32, 32, 3)), jnp.float32)
  f = jax.jit(
    lambda p, x, k: (
      forward(p, x, train=False),
      forward(p, x, train=True, rng=k),
      forward(p, x, train=True, rng=jax.random.fold_in(k, 1)),
    )
  )
  eval_out, train_a, train_b = f(params, x, jax.random.key(0))
  assert not np.allclose(train_a, train_b)  # a different dropout mask per key
  np.testing.assert_array_equal(eval_out, f(params, x, jax.random.key(1))[0])
  with pytest.raises(ValueError, match='rng'):
    jax.eval_shape(lambda p, x: forward(p, x, train=True), params, x)


def test_batch_stats_are_constants_not_params():
  graphdef, params, _ = _small_vgg()
  assert isinstance(graphdef, models.GraphDefWithConstants)
  assert set(jax.tree.leaves(jax.tree.map(lambda _: 'x', params['backbone']['norms']))) == {'x'}
  assert 'mean' not in str(jax.tree_util.tree_structure(params))
  assert 'mean' in graphdef.constants['backbone']['norms'][0]


def test_head_options_and_features():
  _, params, forward = _small_vgg(head_activation='tanh')
  x = jnp.asarray(images((2, 32, 32, 3)), jnp.float32)
  features, codes = forward(params, x, train=False, with_features=True)
  assert features.shape == (2, 256) and codes.shape == (2, 12)
  assert (features < 0).any()  # fc7 before its ReLU
  w, b = params['head']['kernel'], params['head']['bias']
  np.testing.assert_allclose(codes, np.tanh(np.maximum(features, 0) @ w + b), rtol=1e-5, atol=1e-5)
  _, params, forward = _small_vgg(head_activation='sigmoid', feature_layer='fc7')
  features, codes = forward(params, x, train=False, with_features=True)
  assert (features >= 0).all() and ((codes > 0) & (codes < 1)).all()
  with pytest.raises(ValueError, match='head_activation'):
    _small_vgg(head_activation='relu')


def test_bfloat16_jit_matches_float32():
  """bfloat16 compute with float32 params, jitted; at this width XLA:CPU once returned inf (layers.relu)."""
  x = jnp.asarray(images((2, 64, 64, 3)), jnp.float32)
  outputs = {}
  for dtype in ('float32', 'bfloat16'):
    graphdef, params = models.build(dict(name='vgg16', width=1 / 4, dtype=dtype), 12, (64, 64, 3), jax.random.key(0))
    assert all(a.dtype == jnp.float32 for a in jax.tree.leaves(params))
    forward = models.make_forward(graphdef)
    outputs[dtype] = jax.jit(lambda p, x: forward(p, x, train=False, with_features=True))(params, x)
  (f32, _), (f16, c16) = outputs['float32'], outputs['bfloat16']
  assert c16.dtype == jnp.float32 and np.isfinite(f16).all()
  np.testing.assert_allclose(f16, f32, atol=0.05 * float(np.abs(f32).max()))


def test_too_small_input_fails_naming_the_layer():
  with pytest.raises(ValueError, match='too small'):
    backbones.HashNet('vgg16', 8, (16, 16, 3), width=1 / 16, rngs=nnx.Rngs(0))


@pytest.mark.parametrize('arch', ['resnet18', 'alexnet'])  # GoogLeNet's pieces: the next test (compile time)
def test_gradients_reach_every_parameter(arch):
  """Ceil-mode / padded max pools, frozen BatchNorm and dropout pass gradients to every parameter."""
  size = 64 if arch == 'alexnet' else 32
  model = nnx.eval_shape(lambda: backbones.HashNet(arch, 8, (size, size, 3), width=1 / 16, rngs=nnx.Rngs(0)))
  graphdef, params, stats = nnx.split(model, nnx.Param, ...)
  rng = np.random.default_rng(0)
  # Positive BatchNorm scales and biases (statistics 0 and 1) keep the 1-channel units of width 1/16 alive.
  draw = lambda a: rng.normal(size=a.shape) * 0.3 if a.ndim > 1 else np.abs(rng.normal(size=a.shape)) + 0.1
  params = jax.tree.map(lambda a: jnp.asarray(draw(a), a.dtype), nnx.to_pure_dict(params))
  stats = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), nnx.to_pure_dict(stats))
  stats = jax.tree_util.tree_map_with_path(
    lambda path, a: a + 1 if jax.tree_util.keystr(path).endswith("['var']") else a, stats
  )
  x = jnp.asarray(images((2, size, size, 3)), jnp.float32)
  loss = lambda p: jnp.sum(nnx.merge(graphdef, p, stats)(x, train=True, rng=jax.random.key(0)) ** 2)
  grads = jax.jit(jax.grad(loss))(params)
  for path, g in jax.tree_util.tree_leaves_with_path(grads):
    assert np.isfinite(g).all() and np.abs(g).max() > 0, jax.tree_util.keystr(path)


def test_googlenet_inception_gradients():
  """An Inception block after a padded ceil-mode max pool (GoogLeNet's pieces) passes gradients to every parameter."""
  block = nnx.eval_shape(lambda: googlenet_lib.Inception(4, (2, 2, 3, 2, 3, 2), dtype=jnp.float32, rngs=nnx.Rngs(0)))
  graphdef, params, stats = nnx.split(block, nnx.Param, ...)
  rng = np.random.default_rng(0)
  draw = lambda a: rng.normal(size=a.shape) * 0.3 if a.ndim > 1 else np.abs(rng.normal(size=a.shape)) + 0.1
  params = jax.tree.map(lambda a: jnp.asarray(draw(a), a.dtype), nnx.to_pure_dict(params))
  stats = jax.tree.map(lambda a: jnp.ones(a.shape, a.dtype), nnx.to_pure_dict(stats))
  x = jnp.asarray(images((2, 9, 9, 4)), jnp.float32)
  loss = lambda p, x: jnp.sum(nnx.merge(graphdef, p, stats)(layers.max_pool(x, 3, 2, ceil_mode=True)) ** 2)
  grads, grad_x = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, x)
  assert np.abs(grad_x).max() > 0
  for path, g in jax.tree_util.tree_leaves_with_path(grads):
    assert np.isfinite(g).all() and np.abs(g).max() > 0, jax.tree_util.keystr(path)
