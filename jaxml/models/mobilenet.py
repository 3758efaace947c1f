"""MobileNetV2 (Sandler et al. 2018, "MobileNetV2: Inverted Residuals and Linear Bottlenecks",
Table 1 block, Table 2 architecture).

Inverted residual block (Table 1, Fig. 4 d): 1x1 expansion to t*c_in channels + BN + ReLU6
(omitted when t = 1), 3x3 depthwise conv (stride s) + BN + ReLU6, 1x1 linear projection + BN
(no non-linearity: the "linear bottleneck", §3.2); identity shortcut when s = 1 and the channel
count is unchanged.

Network (Table 2): conv 3x3 (32, stride 2); bottleneck stages (t, c, n, s) = (1,16,1,1),
(6,24,2,2), (6,32,3,2), (6,64,4,2), (6,96,3,1), (6,160,3,2), (6,320,1,1) where the first block of
a stage has stride s; conv 1x1 to 1280 + BN + ReLU6; global pool; dense. At 224 px, 1000
classes: 300 M multiply-adds and 3.4 M parameters (Table 4).

Width multiplier `width_mult` (§6.1): every channel count is scaled and rounded to a multiple of
8 (never below 90 % of the scaled value), and the last conv keeps 1280 channels for multipliers
< 1, as in the authors' TF-slim code. The classifier's dropout is left out (jaxml models are
deterministic in eval and train modes alike, except WRN's optional dropout).

`stem='cifar'` (the usual CIFAR adaptation, e.g. kuangliu/pytorch-cifar): the stem conv and the
first stride-2 stage (c = 24) use stride 1, so a 32x32 input reaches the last stage at 4x4 (an
8x total reduction instead of 32x). Conventions (init, BN, dtype) are those of
`jaxml.models.layers`.

`dilations` (CRNAS's spatial reallocation, Liang et al., ICLR 2020, §3.3; `jaxml.spaces.crnas`):
one dilation per block, over all blocks in order, applied to the block's 3x3 depthwise conv with
padding = dilation, so no shape, parameter or multiply-add changes (None: all 1, Table 2's net).
`InvertedResidual(dilation_choices=...)` is the searched block: ONE depthwise kernel applied
with the dilation picked per call (`layers.DilatedConv` with groups = channels), with the plain
block's variables.
"""

import numbers
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxml.errors import ConfigError
from jaxml.models.fields import counts_field, stem_field
from jaxml.models.layers import DilatedConv, batch_norm, check_stem, classifier_head, conv

# Sandler et al. Table 2: (expansion t, output channels c, repeats n, first stride s).
STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
          (6, 160, 3, 2), (6, 320, 1, 1))  # fmt: skip
STEM_CHANNELS = 32
LAST_CHANNELS = 1280


def make_divisible(value: float, divisor: int = 8) -> int:
  """Round to the nearest multiple of `divisor` (at least `divisor`), never below 0.9 * value."""
  rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
  return rounded + divisor if rounded < 0.9 * value else rounded


def group_layout(i: int, width_mult: float, stem: str) -> tuple[int, int, int]:
  """(expansion t, output channels, first block's stride) of Table 2's group i (0-based)."""
  t, c, _, s = STAGES[i]
  if stem == "cifar" and i == 1:
    s = 1  # the CIFAR stem's second stride-1 change (see the module docstring)
  return t, make_divisible(c * width_mult), s


def stem_channels(width_mult: float) -> int:
  return make_divisible(STEM_CHANNELS * width_mult)


def last_channels(width_mult: float) -> int:
  return make_divisible(LAST_CHANNELS * max(1.0, width_mult))


def mobilenet_stem(x: jnp.ndarray, width_mult: float, stem: str, train: bool, dtype) -> jnp.ndarray:
  """The 3x3 stem conv + BN + ReLU6 (stride 2; 1 with the CIFAR stem), in the caller's scope."""
  x = x.astype(dtype)
  x = conv(stem_channels(width_mult), 3, 1 if stem == "cifar" else 2, dtype, name="stem_conv")(x)
  return nn.relu6(batch_norm(train, dtype, name="stem_bn")(x))


def mobilenet_head(
  x: jnp.ndarray, width_mult: float, num_classes: int, train: bool, dtype
) -> jnp.ndarray:
  """The 1x1 conv to 1280 + BN + ReLU6, global pool and classifier, in the caller's scope."""
  x = conv(last_channels(width_mult), 1, 1, dtype, name="last_conv")(x)
  x = nn.relu6(batch_norm(train, dtype, name="last_bn")(x))
  return classifier_head(x, num_classes)


class InvertedResidual(nn.Module):
  """Sandler et al. Table 1: expand (1x1) - depthwise (3x3, stride) - linear project (1x1).

  `dilation`: the depthwise conv's dilation; `dilation_choices` (CRNAS supernet): its candidate
  dilations, chosen per call by `dilation_index` with one shared kernel."""

  features: int
  stride: int
  expansion: int
  dtype: jnp.dtype = jnp.float32
  dilation: int = 1
  dilation_choices: tuple[int, ...] = ()

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool, dilation_index=None) -> jnp.ndarray:
    hidden = x.shape[-1] * self.expansion
    y = x
    if self.expansion != 1:
      y = conv(hidden, 1, 1, self.dtype, name="expand")(y)
      y = nn.relu6(batch_norm(train, self.dtype, name="expand_bn")(y))
    if self.dilation_choices:
      if dilation_index is None:
        raise ValueError("a block with dilation_choices needs dilation_index at call time.")
      choices = tuple(self.dilation_choices)
      dw = DilatedConv(hidden, 3, self.stride, choices, self.dtype, groups=hidden, name="dw")
      y = dw(y, dilation_index)
    else:
      y = conv(
        hidden, 3, self.stride, self.dtype, groups=hidden, dilation=self.dilation, name="dw"
      )(y)
    y = nn.relu6(batch_norm(train, self.dtype, name="dw_bn")(y))
    y = conv(self.features, 1, 1, self.dtype, name="project")(y)
    y = batch_norm(train, self.dtype, name="project_bn")(y)  # linear bottleneck: no ReLU
    if self.stride == 1 and x.shape[-1] == self.features:
      y = y + x.astype(y.dtype)
    return y


class MobileNetV2(nn.Module):
  """MobileNetV2 with width multiplier `width_mult`; `blocks` overrides Table 2's repeats n;
  `dilations` (one per block, all groups in order; None = all 1) those of the depthwise convs."""

  num_classes: int
  width_mult: float = 1.0
  blocks: tuple[int, ...] = tuple(s[2] for s in STAGES)
  stem: str = "cifar"
  dtype: jnp.dtype = jnp.float32
  dilations: tuple[int, ...] | None = None

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    check_stem(self.stem)
    if not self.width_mult > 0:
      raise ValueError(f"width_mult must be > 0, got {self.width_mult!r}.")
    if len(self.blocks) != len(STAGES) or min(self.blocks) < 1:
      raise ValueError(f"blocks must be {len(STAGES)} positive repeat counts, got {self.blocks!r}.")
    if self.dilations is not None and (
      len(self.dilations) != sum(self.blocks) or min(self.dilations) < 1
    ):
      raise ValueError(f"dilations must be {sum(self.blocks)} integers >= 1, got {self.dilations}.")
    dilations = iter(self.dilations or (1,) * sum(self.blocks))
    x = mobilenet_stem(x, self.width_mult, self.stem, train, self.dtype)
    for i, n in enumerate(self.blocks):
      t, features, s = group_layout(i, self.width_mult, self.stem)
      for j in range(n):
        name = f"stage{i + 1}_block{j + 1}"
        block = InvertedResidual(
          features, s if j == 0 else 1, t, self.dtype, dilation=next(dilations), name=name
        )
        x = block(x, train)
    return mobilenet_head(x, self.width_mult, self.num_classes, train, self.dtype)


# The registry's names of this family (jaxml.models.registry): config fields and defaults.
MODEL_FIELDS: dict[str, dict[str, Any]] = {
  "mobilenetv2": {
    "width_mult": 1.0,
    "blocks": (1, 2, 3, 4, 3, 3, 1),
    "stem": "cifar",
    "dilations": (),
  },
}


def build_model(name: str, num_classes: int, dtype, f: Mapping[str, Any]) -> MobileNetV2:
  """The registry's builder of 'mobilenetv2'; ConfigError for an impossible field value."""
  mult = f["width_mult"]
  if isinstance(mult, bool) or not isinstance(mult, numbers.Real) or not mult > 0:
    raise ConfigError(
      f"Model 'mobilenetv2': width_mult must be a number > 0, got {mult!r}. "
      "Set config.model.width_mult."
    )
  blocks = counts_field(name, "blocks", f["blocks"], 7)
  dils = f["dilations"]
  return MobileNetV2(
    num_classes,
    width_mult=float(mult),
    blocks=blocks,
    stem=stem_field(name, f["stem"]),
    dtype=dtype,
    dilations=counts_field(name, "dilations", dils, sum(blocks)) if len(dils or ()) else None,
  )
