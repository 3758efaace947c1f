"""Candidate operations of the cell search spaces, as Flax (linen) modules (NHWC).

The modules follow the reference PyTorch code of each paper so that parameter counts match:

- NAS-Bench-201 (Dong & Yang, ICLR 2020): D-X-Y/AutoDL-Projects `lib/models/cell_operations.py`
  (`ReLUConvBN`, `POOLING`, `Zero`, `Identity`, `FactorizedReduce`, `ResNetBasicblock`).
- DARTS (Liu et al., ICLR 2019): quark0/darts `cnn/operations.py` (`SepConv` is two stacked
  ReLU-depthwise-pointwise-BN units, `DilConv` one dilated unit, `conv_7x1_1x7`).
- NASNet (Zoph et al., CVPR 2018) operation list, used by EcoNAS (Zhou et al., CVPR 2020).

Every cell operation maps C channels to C channels: all three spaces keep the width constant
inside a cell (NB201 changes it in ResNet blocks between cells, DARTS/EcoNAS preprocess the cell
inputs to C channels). Stride 2 only occurs in DARTS/EcoNAS reduction cells. Padding is explicit
and symmetric, as in PyTorch (Flax's 'SAME' pads stride-2 convolutions asymmetrically).

Cost convention (`op_cost`): MACs (multiply-accumulates) of convolutions and dense layers, one MAC
per output for a bias; pooling, BN, ReLU and additions are not counted. This is the convention of
the NAS-Bench-201 API's FLOPs (`get_model_infos` in AutoDL-Projects `utils/flop_benchmark.py`),
which reports MACs / 1e6 as "MFLOPs". Parameters are the entries of the Flax 'params' collection
(conv kernels, BN scale and bias, dense kernel and bias), which equals PyTorch's
`model.parameters()` (BN running statistics are buffers / 'batch_stats', not counted).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

# PyTorch's BatchNorm2d defaults: momentum 0.1 (Flax's momentum is 1 - that), eps 1e-5.
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


def batch_norm(train: bool, affine: bool = True, name: str | None = None) -> nn.BatchNorm:
  """BatchNorm with PyTorch's defaults; batch statistics in training, running ones in eval."""
  return nn.BatchNorm(
    use_running_average=not train,
    momentum=BN_MOMENTUM,
    epsilon=BN_EPSILON,
    use_scale=affine,
    use_bias=affine,
    name=name,
  )


def _same(kernel: int, dilation: int = 1) -> tuple[tuple[int, int], tuple[int, int]]:
  p = dilation * (kernel - 1) // 2
  return ((p, p), (p, p))


def out_size(n: int, stride: int) -> int:
  """Spatial size after a 'same'-padded op with odd kernel: ceil(n / stride)."""
  return -(-n // stride)


class Zero(nn.Module):
  """The `none` op: zeros with the op's output shape (NB201 `Zero`, DARTS `Zero`)."""

  stride: int = 1

  def __call__(self, x, train: bool = False):
    del train
    return jnp.zeros_like(x[:, :: self.stride, :: self.stride, :])


class Identity(nn.Module):
  """The `skip_connect` op at stride 1."""

  def __call__(self, x, train: bool = False):
    del train
    return x


class ReLUConvBN(nn.Module):
  """ReLU -> Conv(k x k, no bias) -> BN: NB201 `nor_conv_kxk`, NASNet `kxk conv`, preprocessing."""

  features: int
  kernel_size: int
  stride: int = 1
  affine: bool = True

  @nn.compact
  def __call__(self, x, train: bool = False):
    k, s = self.kernel_size, self.stride
    x = nn.relu(x)
    x = nn.Conv(self.features, (k, k), (s, s), padding=_same(k), use_bias=False, name="conv")(x)
    return batch_norm(train, self.affine, "bn")(x)


class SepConv(nn.Module):
  """DARTS `sep_conv_kxk`: two stacked ReLU-depthwise-pointwise-BN units, stride on the first."""

  features: int
  kernel_size: int
  stride: int = 1
  affine: bool = True

  @nn.compact
  def __call__(self, x, train: bool = False):
    k, c_in = self.kernel_size, x.shape[-1]
    for i, (s, c_out) in enumerate(((self.stride, c_in), (1, self.features))):
      x = nn.relu(x)
      x = nn.Conv(
        c_in,
        (k, k),
        (s, s),
        padding=_same(k),
        feature_group_count=c_in,
        use_bias=False,
        name=f"dw{i}",
      )(x)
      x = nn.Conv(c_out, (1, 1), use_bias=False, name=f"pw{i}")(x)
      x = batch_norm(train, self.affine, f"bn{i}")(x)
    return x


class DilConv(nn.Module):
  """DARTS `dil_conv_kxk`: ReLU -> dilated depthwise conv -> pointwise conv -> BN."""

  features: int
  kernel_size: int
  stride: int = 1
  dilation: int = 2
  affine: bool = True

  @nn.compact
  def __call__(self, x, train: bool = False):
    k, d, s, c_in = self.kernel_size, self.dilation, self.stride, x.shape[-1]
    x = nn.relu(x)
    x = nn.Conv(
      c_in,
      (k, k),
      (s, s),
      padding=_same(k, d),
      kernel_dilation=(d, d),
      feature_group_count=c_in,
      use_bias=False,
      name="dw",
    )(x)
    x = nn.Conv(self.features, (1, 1), use_bias=False, name="pw")(x)
    return batch_norm(train, self.affine, "bn")(x)


class FactorizedConv(nn.Module):
  """NASNet `1xk then kx1 conv` (DARTS `conv_7x1_1x7`): ReLU -> Conv(1,k) -> Conv(k,1) -> BN."""

  features: int
  kernel_size: int
  stride: int = 1
  affine: bool = True

  @nn.compact
  def __call__(self, x, train: bool = False):
    k, s, p = self.kernel_size, self.stride, (self.kernel_size - 1) // 2
    x = nn.relu(x)
    x = nn.Conv(
      self.features, (1, k), (1, s), padding=((0, 0), (p, p)), use_bias=False, name="conv1xk"
    )(x)
    x = nn.Conv(
      self.features, (k, 1), (s, 1), padding=((p, p), (0, 0)), use_bias=False, name="convkx1"
    )(x)
    return batch_norm(train, self.affine, "bn")(x)


class Pool(nn.Module):
  """3x3 average (not counting padding, as PyTorch's count_include_pad=False) or kxk max pool."""

  kind: str
  window: int
  stride: int = 1

  def __call__(self, x, train: bool = False):
    del train
    w, s = (self.window, self.window), (self.stride, self.stride)
    pad = _same(self.window)
    if self.kind == "avg":
      total = nn.pool(x, 0.0, jax.lax.add, w, s, pad)
      return total / _window_counts(x.shape[1:3], self.window, self.stride, pad[0][0])
    return nn.max_pool(x, w, s, padding=pad)  # pads with -inf, like PyTorch


def _window_counts(hw, window: int, stride: int, pad: int) -> np.ndarray:
  """float32 [1, H', W', 1]: how many real (unpadded) pixels each pooling window covers.

  The divisor of an average that does not count padding (PyTorch's count_include_pad=False).
  Computed here in numpy: `nn.avg_pool` pools a ones array instead, which XLA constant-folds
  with its slow evaluator (over 1 s per pooling op measured on the NB201 array build).
  """

  def counts(n):
    starts = np.arange(0, n + 2 * pad - window + 1, stride) - pad
    return np.minimum(starts + window, n) - np.maximum(starts, 0)

  return np.outer(counts(hw[0]), counts(hw[1])).astype(np.float32)[None, :, :, None]


class FactorizedReduce(nn.Module):
  """Halve the resolution with two offset 1x1 stride-2 convs (channels split in two) and BN.

  As NB201's version: the input is zero-padded by one at the bottom/right before the offset
  branch, so odd sizes work (for even sizes this equals DARTS's `x[:, :, 1:, 1:]`).
  """

  features: int
  affine: bool = True

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = nn.relu(x)
    half = self.features // 2
    a = nn.Conv(half, (1, 1), (2, 2), padding="VALID", use_bias=False, name="conv0")(x)
    y = jnp.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)))[:, 1:, 1:, :]
    b = nn.Conv(
      self.features - half, (1, 1), (2, 2), padding="VALID", use_bias=False, name="conv1"
    )(y)
    return batch_norm(train, self.affine, "bn")(jnp.concatenate([a, b], axis=-1))


class ResNetBasicBlock(nn.Module):
  """NB201 `ResNetBasicblock`: two ReLU-Conv3x3-BN plus a shortcut.

  The shortcut is 2x2 avg-pool + 1x1 conv (no BN) at stride 2, ReLU-Conv1x1-BN when only the
  width changes, identity otherwise.
  """

  features: int
  stride: int = 2
  affine: bool = True

  @nn.compact
  def __call__(self, x, train: bool = False):
    y = ReLUConvBN(self.features, 3, self.stride, self.affine, name="conv_a")(x, train)
    y = ReLUConvBN(self.features, 3, 1, self.affine, name="conv_b")(y, train)
    if self.stride == 2:
      r = nn.avg_pool(x, (2, 2), (2, 2))
      r = nn.Conv(self.features, (1, 1), use_bias=False, name="shortcut")(r)
    elif x.shape[-1] != self.features:
      r = ReLUConvBN(self.features, 1, 1, self.affine, name="shortcut")(x, train)
    else:
      r = x
    return r + y


def resnet_block_cost(
  c_in: int, c_out: int, h: int, w: int, stride: int = 2, affine: bool = True
) -> tuple[int, int]:
  """(MACs, params) of `ResNetBasicBlock`; at stride 2 the shortcut runs at h/2 x w/2."""
  bn = 2 * c_out if affine else 0
  ho, wo = out_size(h, stride), out_size(w, stride)
  macs = 9 * c_in * c_out * ho * wo + 9 * c_out * c_out * ho * wo
  params = 9 * c_in * c_out + 9 * c_out * c_out + 2 * bn
  if stride == 2:
    macs += c_in * c_out * (h // 2) * (w // 2)
    params += c_in * c_out
  elif c_in != c_out:
    macs += c_in * c_out * h * w
    params += c_in * c_out + bn
  return macs, params


def relu_conv_bn_cost(
  c_in: int, c_out: int, k: int, h: int, w: int, stride: int = 1, affine: bool = True
) -> tuple[int, int]:
  """(MACs, params) of `ReLUConvBN`."""
  ho, wo = out_size(h, stride), out_size(w, stride)
  return k * k * c_in * c_out * ho * wo, k * k * c_in * c_out + (2 * c_out if affine else 0)


def factorized_reduce_cost(
  c_in: int, c_out: int, h: int, w: int, affine: bool = True
) -> tuple[int, int]:
  """(MACs, params) of `FactorizedReduce`: the two halves together are one 1x1 conv."""
  ho, wo = out_size(h, 2), out_size(w, 2)
  return c_in * c_out * ho * wo, c_in * c_out + (2 * c_out if affine else 0)


@dataclasses.dataclass(frozen=True)
class OpSpec:
  """How to build a cell op (C -> C channels) and what it costs.

  build(channels, stride, affine, name) -> module called as module(x, train).
  cost(channels, h, w, stride, affine) -> (MACs per example, params), h/w = input size.
  """

  build: Callable[..., nn.Module]
  cost: Callable[..., tuple[int, int]]


def _conv_spec(k: int) -> OpSpec:
  return OpSpec(
    lambda c, s, a, name: ReLUConvBN(c, k, s, a, name=name),
    lambda c, h, w, s, a: relu_conv_bn_cost(c, c, k, h, w, s, a),
  )


def _sep_spec(k: int) -> OpSpec:
  def cost(c, h, w, s, a):
    hw = out_size(h, s) * out_size(w, s)
    return 2 * (k * k * c + c * c) * hw, 2 * (k * k * c + c * c + (2 * c if a else 0))

  return OpSpec(lambda c, s, a, name: SepConv(c, k, s, a, name=name), cost)


def _dil_spec(k: int) -> OpSpec:
  def cost(c, h, w, s, a):
    hw = out_size(h, s) * out_size(w, s)
    return (k * k * c + c * c) * hw, k * k * c + c * c + (2 * c if a else 0)

  return OpSpec(lambda c, s, a, name: DilConv(c, k, s, 2, a, name=name), cost)


def _fac_spec(k: int) -> OpSpec:
  def cost(c, h, w, s, a):
    # The 1xk conv strides only the width, the kx1 conv then strides the height.
    wo, ho = out_size(w, s), out_size(h, s)
    return k * c * c * h * wo + k * c * c * ho * wo, 2 * k * c * c + (2 * c if a else 0)

  return OpSpec(lambda c, s, a, name: FactorizedConv(c, k, s, a, name=name), cost)


def _pool_spec(kind: str, k: int) -> OpSpec:
  return OpSpec(lambda c, s, a, name: Pool(kind, k, s, name=name), lambda c, h, w, s, a: (0, 0))


def _skip_build(c, s, a, name):
  return Identity(name=name) if s == 1 else FactorizedReduce(c, a, name=name)


def _skip_cost(c, h, w, s, a):
  return (0, 0) if s == 1 else factorized_reduce_cost(c, c, h, w, a)


# All cell ops of the three spaces, by name. `nor_conv_kxk` (NB201) and `conv_kxk` (NASNet) are
# the same ReLU-Conv-BN; both names are kept so each space can use its paper's vocabulary.
CELL_OPS: dict[str, OpSpec] = {
  "none": OpSpec(lambda c, s, a, name: Zero(s, name=name), lambda c, h, w, s, a: (0, 0)),
  "skip_connect": OpSpec(_skip_build, _skip_cost),
  "avg_pool_3x3": _pool_spec("avg", 3),
  "max_pool_3x3": _pool_spec("max", 3),
  "max_pool_5x5": _pool_spec("max", 5),
  "max_pool_7x7": _pool_spec("max", 7),
  "nor_conv_1x1": _conv_spec(1),
  "nor_conv_3x3": _conv_spec(3),
  "conv_1x1": _conv_spec(1),
  "conv_3x3": _conv_spec(3),
  "sep_conv_3x3": _sep_spec(3),
  "sep_conv_5x5": _sep_spec(5),
  "sep_conv_7x7": _sep_spec(7),
  "dil_conv_3x3": _dil_spec(3),
  "dil_conv_5x5": _dil_spec(5),
  "conv_1x3_3x1": _fac_spec(3),
  "conv_1x7_7x1": _fac_spec(7),
}


def build_op(
  name: str, channels: int, stride: int, affine: bool = True, module_name: str | None = None
) -> nn.Module:
  """The Flax module of cell op `name` (C -> C channels, given stride)."""
  return CELL_OPS[name].build(channels, stride, affine, module_name)


def op_cost(
  name: str, channels: int, h: int, w: int, stride: int = 1, affine: bool = True
) -> tuple[int, int]:
  """(MACs per example, params) of cell op `name` on an h x w input with `channels` channels."""
  return CELL_OPS[name].cost(channels, h, w, stride, affine)
