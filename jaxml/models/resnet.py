"""ResNets for 32x32 inputs (CIFAR) or 224x224 inputs (ImageNet stem), and a tiny proxy CNN.

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

Options of every `ResNet` (the other families of `jaxml.models` offer them too):

* `stem='imagenet'`: He et al. Table 1's stem (7x7 conv with stride 2, BN, ReLU, 3x3 max-pool
  with stride 2) instead of the CIFAR 3x3 stride-1 conv. With it ResNet-50 is the torchvision
  ResNet-50 ("v1.5", stride on the 3x3): 25,557,032 parameters and 4.1 G multiply-adds at 224 px
  (He et al. count 3.8 G for the original stride-on-the-1x1 layout).
* `se=True`: a squeeze-and-excitation block (Hu et al. 2018, "Squeeze-and-Excitation Networks",
  Fig. 3 / Eq. 2-4, reduction r = 16) on every residual branch before the addition; SE-ResNet-50
  has 2.53 M more parameters than ResNet-50 (Hu et al. §4: "~2.5 million additional").

Init, BN, dtype and padding conventions (shared by every family of `jaxml.models`) and the
layers themselves (`conv`, `batch_norm`, `SqueezeExcite`, `DilatedConv`, ...) live in
`jaxml.models.layers`; this module keeps the ResNet blocks, stems and networks.
"""

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxml.errors import ConfigError
from jaxml.models.fields import bool_field, counts_field, depth_field, int_field, stem_field
from jaxml.models.layers import (
  DilatedConv,
  SqueezeExcite,
  batch_norm,
  check_stem,
  classifier_head,
  conv,
  max_pool_3x3_s2,
)

SHORTCUTS = ("pad", "projection")


def conv3x3_maybe_dilated(module: nn.Module, features: int, stride: int, x, index):
  """The block's searchable 3x3 conv (named 'conv2'): a `DilatedConv` picking
  `module.dilation_choices[index]` when the block has choices, else `conv` with the block's
  static `dilation`."""
  if module.dilation_choices:
    if index is None:
      raise ValueError("a block with dilation_choices needs dilation_index at call time.")
    layer = DilatedConv(
      features, 3, stride, tuple(module.dilation_choices), module.dtype, name="conv2"
    )
    return layer(x, index)
  return conv(features, 3, stride, module.dtype, name="conv2", dilation=module.dilation)(x)


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
  se: bool = False  # squeeze-and-excitation on the residual branch (Hu et al. Fig. 3)
  # Dilation of the second 3x3 conv (CRNAS's spatial choice for a basic block), or the
  # candidate dilations of a supernet block, chosen per call by `dilation_index`.
  dilation: int = 1
  dilation_choices: tuple[int, ...] = ()

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool, dilation_index=None) -> jnp.ndarray:
    y = conv(self.features, 3, self.stride, self.dtype, name="conv1")(x)
    y = nn.relu(batch_norm(train, self.dtype, name="bn1")(y))
    y = conv3x3_maybe_dilated(self, self.features, 1, y, dilation_index)
    y = batch_norm(train, self.dtype, name="bn2")(y)
    if self.se:
      y = SqueezeExcite(dtype=self.dtype, name="se")(y)
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
  se: bool = False  # squeeze-and-excitation on the residual branch (Hu et al. Fig. 3)
  # Dilation of the middle 3x3 conv (CRNAS's spatial choice for a bottleneck), or a supernet
  # block's candidate dilations, chosen per call by `dilation_index`.
  dilation: int = 1
  dilation_choices: tuple[int, ...] = ()

  expansion = 4

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool, dilation_index=None) -> jnp.ndarray:
    out = self.expansion * self.features
    y = conv(self.features, 1, 1, self.dtype, name="conv1")(x)
    y = nn.relu(batch_norm(train, self.dtype, name="bn1")(y))
    y = conv3x3_maybe_dilated(self, self.features, self.stride, y, dilation_index)
    y = nn.relu(batch_norm(train, self.dtype, name="bn2")(y))
    y = conv(out, 1, 1, self.dtype, name="conv3")(y)
    y = batch_norm(train, self.dtype, name="bn3")(y)
    if self.se:
      y = SqueezeExcite(dtype=self.dtype, name="se")(y)
    residual = x
    if self.stride != 1 or x.shape[-1] != out:
      residual = conv(out, 1, self.stride, self.dtype, name="proj_conv")(x)
      residual = batch_norm(train, self.dtype, name="proj_bn")(residual)
    return nn.relu(y + residual.astype(y.dtype))


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


class ResNet(nn.Module):
  """A ResNet: stem, stages of residual blocks (stride 2 from stage 2 on), pool, dense.

  Attributes:
    stage_sizes: blocks per stage, e.g. (3, 3, 3) for ResNet-20, (2, 2, 2, 2) for ResNet-18.
    stage_widths: output channels per stage, e.g. (16, 32, 64) or (64, 128, 256, 512).
    num_classes: logits per example.
    shortcut: 'pad' (He et al. option A) or 'projection' (option B, 1x1 conv + BN).
    block: 'basic' (two 3x3 convs) or 'bottleneck' (1x1-3x3-1x1, 4x wider output).
    dtype: computation dtype; params are float32 and logits float32 whatever it is.
    stem: 'cifar' (3x3 conv, stride 1) or 'imagenet' (7x7 conv stride 2, BN, ReLU, 3x3 max-pool
      stride 2; He et al. Table 1 "conv1" and the pool of "conv2_x").
    se: squeeze-and-excitation in every block (Hu et al. 2018).
    dilations: per block (stage-major, sum(stage_sizes) values), the dilation of its searchable
      3x3 conv (basic: the second; bottleneck: the middle one); None = all 1. CRNAS's spatial
      reallocation (Liang et al., ICLR 2020, §3.3).
  """

  stage_sizes: Sequence[int]
  stage_widths: Sequence[int]
  num_classes: int
  shortcut: str = "projection"
  block: str = "basic"
  dtype: jnp.dtype = jnp.float32
  stem: str = "cifar"
  se: bool = False
  dilations: Sequence[int] | None = None

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    if self.dilations is not None and len(self.dilations) != sum(self.stage_sizes):
      raise ValueError(
        f"dilations must have one value per block ({sum(self.stage_sizes)}), got "
        f"{len(self.dilations)}."
      )
    if self.block not in BLOCKS:
      raise ValueError(f"block must be one of {tuple(BLOCKS)}, got {self.block!r}.")
    if self.shortcut not in SHORTCUTS:
      raise ValueError(f"shortcut must be one of {SHORTCUTS}, got {self.shortcut!r}.")
    if len(self.stage_sizes) != len(self.stage_widths):
      raise ValueError("stage_sizes and stage_widths must have the same length.")
    check_stem(self.stem)
    x = resnet_stem(x, self.stage_widths[0], self.stem, train, self.dtype)
    dilations = iter(self.dilations or [1] * sum(self.stage_sizes))
    for i, (size, width) in enumerate(zip(self.stage_sizes, self.stage_widths, strict=True)):
      for j in range(size):
        stride = 2 if i > 0 and j == 0 else 1
        name = f"stage{i + 1}_block{j + 1}"
        block = BLOCKS[self.block](
          width, stride, self.shortcut, self.dtype, se=self.se, dilation=next(dilations), name=name
        )
        x = block(x, train)
    return classifier_head(x, self.num_classes)


def resnet_stem(x: jnp.ndarray, width: int, stem: str, train: bool, dtype) -> jnp.ndarray:
  """The ResNet stem (variables 'stem_conv', 'stem_bn' of the calling module): 3x3/1 conv
  ('cifar') or 7x7/2 conv + 3x3/2 max-pool ('imagenet'), BN, ReLU; input cast to `dtype`."""
  x = x.astype(dtype)
  if stem == "imagenet":
    x = conv(width, 7, 2, dtype, name="stem_conv")(x)
  else:
    x = conv(width, 3, 1, dtype, name="stem_conv")(x)
  x = nn.relu(batch_norm(train, dtype, name="stem_bn")(x))
  if stem == "imagenet":
    x = max_pool_3x3_s2(x)
  return x


ResNet18 = functools.partial(
  ResNet, stage_sizes=(2, 2, 2, 2), stage_widths=(64, 128, 256, 512), shortcut="projection"
)
ResNet34 = functools.partial(
  ResNet, stage_sizes=(3, 4, 6, 3), stage_widths=(64, 128, 256, 512), shortcut="projection"
)
ResNet50 = functools.partial(ResNet34, block="bottleneck")


def cifar_resnet(
  depth: int, num_classes: int, width: int = 16, dtype=jnp.float32, stem: str = "cifar"
) -> ResNet:
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
    stem=stem,
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


# The registry's names of this family (jaxml.models.registry): config fields and defaults.
MODEL_FIELDS: dict[str, dict[str, Any]] = {
  "resnet18": {"width": 64, "stem": "cifar", "se": False},
  "resnet34": {"width": 64, "stem": "cifar", "se": False},
  "resnet50": {"width": 64, "stem": "cifar", "se": False},
  "resnet20": {},
  "resnet56": {},
  "cifar_resnet": {"depth": 20, "width": 16, "stem": "cifar"},
  "tiny_cnn": {"width": 8},
  "crnas_resnet": {
    "block": "basic",
    "width": 64,
    "stage_sizes": (2, 2, 2, 2),
    "dilations": (),
    "stem": "cifar",
  },
}


def build_model(name: str, num_classes: int, dtype, f: Mapping[str, Any]) -> nn.Module:
  """The registry's builder: model `name` of MODEL_FIELDS from its fields `f` (every field
  present); ConfigError for an impossible value."""
  if name in ("resnet18", "resnet34", "resnet50"):
    w = int_field(name, "width", f["width"], 1)
    build = {"resnet18": ResNet18, "resnet34": ResNet34, "resnet50": ResNet50}[name]
    return build(
      num_classes=num_classes,
      dtype=dtype,
      stage_widths=(w, 2 * w, 4 * w, 8 * w),
      stem=stem_field(name, f["stem"]),
      se=bool_field(name, "se", f["se"]),
    )
  if name == "crnas_resnet":
    return _crnas_resnet(num_classes, dtype, f)
  if name in ("resnet20", "resnet56"):
    return cifar_resnet(int(name[len("resnet") :]), num_classes, width=16, dtype=dtype)
  if name == "cifar_resnet":
    depth = depth_field(name, f["depth"], offset=2)
    width = int_field(name, "width", f["width"], 1)
    stem = stem_field(name, f["stem"])
    return cifar_resnet(depth, num_classes, width=width, dtype=dtype, stem=stem)
  # name == "tiny_cnn" (the only name left in MODEL_FIELDS).
  return TinyCNN(num_classes, width=int_field(name, "width", f["width"], 1), dtype=dtype)


def _crnas_resnet(num_classes: int, dtype, f: Mapping[str, Any]) -> ResNet:
  """'crnas_resnet': a ResNet with `stage_sizes` blocks and per-block `dilations` (the fixed
  networks CRNAS finds, `jaxml.spaces.crnas`)."""
  name = "crnas_resnet"
  if f["block"] not in ("basic", "bottleneck"):
    raise ConfigError(
      f"Model {name!r}: block must be 'basic' or 'bottleneck', got {f['block']!r}. "
      "Set config.model.block."
    )
  sizes = counts_field(name, "stage_sizes", f["stage_sizes"], 4)
  dilations = f["dilations"]
  if len(dilations or ()):
    dilations = counts_field(name, "dilations", dilations, sum(sizes))
  width = int_field(name, "width", f["width"], 1)
  return ResNet(
    stage_sizes=sizes,
    stage_widths=(width, 2 * width, 4 * width, 8 * width),
    num_classes=num_classes,
    block=f["block"],
    dtype=dtype,
    stem=stem_field(name, f["stem"]),
    dilations=tuple(dilations) if len(dilations or ()) else None,
  )
