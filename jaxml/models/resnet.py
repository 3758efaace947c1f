"""ResNets for 32x32 inputs (CIFAR), and a tiny proxy CNN.

Two CIFAR ResNet families share one module, `ResNet` (post-activation BasicBlocks, He et al.
2016, "Deep Residual Learning for Image Recognition", Fig. 2 left / Eq. 1-2):

* He et al. §4.2 CIFAR nets, ResNet-(6n+2): a 3x3 stem with `w` channels, three stages of n
  blocks with w/2w/4w channels (w = 16 in the paper), global average pool, dense. Shortcuts are
  option A (§3.3, parameter-free): subsample by 2 and zero-pad the new channels, as in the
  widely used akamaster/pytorch_resnet_cifar10 code. ResNet-20 has 269,722 and ResNet-56
  853,018 parameters for 10 classes (counting BN scale/bias), i.e. the paper's 0.27M / 0.85M.
* The kuangliu/pytorch-cifar ResNet-18/34/50: the ImageNet stage layout (64/128/256/512 channels,
  2-2-2-2 or 3-4-6-3 blocks) with a CIFAR stem (3x3 conv, stride 1, no max-pool) and option B
  shortcuts (1x1 conv + BN when the shape changes). ResNet-18 has 11,173,962 parameters.
  ResNet-50 uses He et al.'s bottleneck block (Fig. 5 right: 1x1 reduce, 3x3, 1x1 expand x4;
  the stride on the 3x3 as in kuangliu's code) and has 23,520,842 parameters.

Conventions shared with `wrn.py` (and the rest of `jaxml.models`):

* Convs have no bias and Kaiming-normal fan-out init (std = sqrt(2 / (k*k*out_channels)), not
  truncated), as in the torch reference code of He et al. and Zagoruyko & Komodakis. BN starts
  at scale 1, bias 0; the classifier uses torch's default nn.Linear weight init
  (U(+-1/sqrt(fan_in))) with a zero bias. Nothing is zero-initialised beyond that, so the nets
  match the papers' code rather than later "zero-init the last BN gamma" recipes.
* BatchNorm keeps running statistics in the 'batch_stats' collection (momentum 0.9 = torch's
  0.1, epsilon 1e-5). Flax normalises running variance with the biased batch variance where
  torch uses the unbiased one; the difference is (B-1)/B and irrelevant in practice.
* `dtype` is the computation dtype (float32 or bfloat16); parameters stay float32. The pooled
  features and the classifier run in float32 (a negligible cost) and logits are float32.
* 3x3 convs pad explicitly by 1 on every side, like torch's padding=1. Flax's 'SAME' would pad
  (0, 1) for stride 2 and so sample odd pixels, misaligned with the option-A subsampling x[::2].
"""

import functools
from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

# Kaiming normal, fan-out mode, untruncated (torch.nn.init.kaiming_normal_(mode='fan_out')).
conv_kernel_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
# torch's default nn.Linear weight init: kaiming_uniform(a=sqrt(5)) == U(+-1/sqrt(fan_in)).
dense_kernel_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")

SHORTCUTS = ("pad", "projection")


def conv(features: int, kernel: int, stride: int, dtype, name: str | None = None) -> nn.Conv:
  """A bias-free conv with torch-style symmetric padding (kernel // 2 on each side)."""
  pad = kernel // 2
  return nn.Conv(
    features,
    (kernel, kernel),
    strides=(stride, stride),
    padding=((pad, pad), (pad, pad)),
    use_bias=False,
    dtype=dtype,
    param_dtype=jnp.float32,
    kernel_init=conv_kernel_init,
    name=name,
  )


def batch_norm(train: bool, dtype, name: str | None = None) -> nn.BatchNorm:
  """BatchNorm with the project-wide settings (running stats in 'batch_stats')."""
  return nn.BatchNorm(
    use_running_average=not train,
    momentum=0.9,
    epsilon=1e-5,
    dtype=dtype,
    param_dtype=jnp.float32,
    name=name,
  )


def classifier_head(x: jnp.ndarray, num_classes: int) -> jnp.ndarray:
  """Global average pool then a dense layer, both in float32; returns float32 logits."""
  x = jnp.mean(x.astype(jnp.float32), axis=(1, 2))
  return nn.Dense(
    num_classes,
    dtype=jnp.float32,
    param_dtype=jnp.float32,
    kernel_init=dense_kernel_init,
    bias_init=nn.initializers.zeros,
    name="head",
  )(x)


def pad_shortcut(x: jnp.ndarray, features: int, stride: int) -> jnp.ndarray:
  """He et al. §3.3 option A: subsample by `stride` and zero-pad the extra channels.

  The new channels are split evenly before and after the old ones, as in the reference code
  (F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4))).
  """
  x = x[:, ::stride, ::stride, :]
  extra = features - x.shape[-1]
  if extra < 0:
    raise ValueError(f"option-A shortcut cannot shrink channels ({x.shape[-1]} -> {features}).")
  return jnp.pad(x, ((0, 0), (0, 0), (0, 0), (extra // 2, extra - extra // 2)))


class BasicBlock(nn.Module):
  """Post-activation residual block: relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))."""

  features: int
  stride: int = 1
  shortcut: str = "projection"  # 'pad' (option A) or 'projection' (option B)
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    y = conv(self.features, 3, self.stride, self.dtype, name="conv1")(x)
    y = nn.relu(batch_norm(train, self.dtype, name="bn1")(y))
    y = conv(self.features, 3, 1, self.dtype, name="conv2")(y)
    y = batch_norm(train, self.dtype, name="bn2")(y)
    residual = x
    if self.stride != 1 or x.shape[-1] != self.features:
      if self.shortcut == "pad":
        residual = pad_shortcut(x, self.features, self.stride)
      else:
        residual = conv(self.features, 1, self.stride, self.dtype, name="proj_conv")(x)
        residual = batch_norm(train, self.dtype, name="proj_bn")(residual)
    return nn.relu(y + residual.astype(y.dtype))


class Bottleneck(nn.Module):
  """He et al. Fig. 5 (right): relu(bn(conv1x1_4w(relu(bn(conv3x3_w(relu(bn(conv1x1_w(x)))))))
  + shortcut(x)); `features` is the 3x3's width w, the block outputs 4w channels."""

  features: int
  stride: int = 1
  shortcut: str = "projection"  # only option B: option A cannot widen 4x per stage cheaply
  dtype: jnp.dtype = jnp.float32

  expansion = 4

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    out = self.expansion * self.features
    y = conv(self.features, 1, 1, self.dtype, name="conv1")(x)
    y = nn.relu(batch_norm(train, self.dtype, name="bn1")(y))
    y = conv(self.features, 3, self.stride, self.dtype, name="conv2")(y)
    y = nn.relu(batch_norm(train, self.dtype, name="bn2")(y))
    y = conv(out, 1, 1, self.dtype, name="conv3")(y)
    y = batch_norm(train, self.dtype, name="bn3")(y)
    residual = x
    if self.stride != 1 or x.shape[-1] != out:
      residual = conv(out, 1, self.stride, self.dtype, name="proj_conv")(x)
      residual = batch_norm(train, self.dtype, name="proj_bn")(residual)
    return nn.relu(y + residual.astype(y.dtype))


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


class ResNet(nn.Module):
  """A CIFAR ResNet: 3x3 stem, stages of BasicBlocks (stride 2 from stage 2 on), pool, dense.

  Attributes:
    stage_sizes: blocks per stage, e.g. (3, 3, 3) for ResNet-20, (2, 2, 2, 2) for ResNet-18.
    stage_widths: output channels per stage, e.g. (16, 32, 64) or (64, 128, 256, 512).
    num_classes: logits per example.
    shortcut: 'pad' (He et al. option A) or 'projection' (option B, 1x1 conv + BN).
    block: 'basic' (two 3x3 convs) or 'bottleneck' (1x1-3x3-1x1, 4x wider output).
    dtype: computation dtype; params are float32 and logits float32 whatever it is.
  """

  stage_sizes: Sequence[int]
  stage_widths: Sequence[int]
  num_classes: int
  shortcut: str = "projection"
  block: str = "basic"
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    if self.block not in BLOCKS:
      raise ValueError(f"block must be one of {tuple(BLOCKS)}, got {self.block!r}.")
    if self.shortcut not in SHORTCUTS:
      raise ValueError(f"shortcut must be one of {SHORTCUTS}, got {self.shortcut!r}.")
    if len(self.stage_sizes) != len(self.stage_widths):
      raise ValueError("stage_sizes and stage_widths must have the same length.")
    x = x.astype(self.dtype)
    x = conv(self.stage_widths[0], 3, 1, self.dtype, name="stem_conv")(x)
    x = nn.relu(batch_norm(train, self.dtype, name="stem_bn")(x))
    for i, (size, width) in enumerate(zip(self.stage_sizes, self.stage_widths, strict=True)):
      for j in range(size):
        stride = 2 if i > 0 and j == 0 else 1
        name = f"stage{i + 1}_block{j + 1}"
        x = BLOCKS[self.block](width, stride, self.shortcut, self.dtype, name=name)(x, train)
    return classifier_head(x, self.num_classes)


ResNet18 = functools.partial(
  ResNet, stage_sizes=(2, 2, 2, 2), stage_widths=(64, 128, 256, 512), shortcut="projection"
)
ResNet34 = functools.partial(
  ResNet, stage_sizes=(3, 4, 6, 3), stage_widths=(64, 128, 256, 512), shortcut="projection"
)
ResNet50 = functools.partial(ResNet34, block="bottleneck")


def cifar_resnet(depth: int, num_classes: int, width: int = 16, dtype=jnp.float32) -> ResNet:
  """He et al. §4.2 ResNet-`depth` (depth = 6n+2) with base width `width`, option-A shortcuts.

  `width=16` is the paper's net; smaller widths give cheap proxies (e.g. an 8-channel ResNet-8).
  Raises ValueError for a depth that is not 6n+2 with n >= 1 (the registry turns bad config
  values into ConfigError before getting here).
  """
  if depth < 8 or (depth - 2) % 6:
    raise ValueError(f"CIFAR ResNet depth must be 6n+2 with n >= 1 (8, 14, 20, ...), got {depth}.")
  n = (depth - 2) // 6
  return ResNet(
    stage_sizes=(n, n, n),
    stage_widths=(width, 2 * width, 4 * width),
    num_classes=num_classes,
    shortcut="pad",
    dtype=dtype,
  )


class TinyCNN(nn.Module):
  """A small proxy CNN for tests and benchmarks: 3 x (conv3x3-BN-ReLU), strides 1/2/2, pool, dense.

  Every layer has `width` channels (not a paper model; it exists to be cheap on a CPU).
  """

  num_classes: int
  width: int = 8
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    x = x.astype(self.dtype)
    for i, stride in enumerate((1, 2, 2)):
      x = conv(self.width, 3, stride, self.dtype, name=f"conv{i + 1}")(x)
      x = nn.relu(batch_norm(train, self.dtype, name=f"bn{i + 1}")(x))
    return classifier_head(x, self.num_classes)
