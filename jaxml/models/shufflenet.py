"""ShuffleNet V2 (Ma et al. 2018, "ShuffleNet V2: Practical Guidelines for Efficient CNN
Architecture Design", Fig. 3 (c)/(d) units, Table 5 architecture).

Network (Table 5): stem conv 3x3 (24 channels, stride 2) + BN + ReLU and a 3x3 max-pool with
stride 2; stages 2-4 of 4 / 8 / 4 units whose first unit down-samples (Fig. 3 d) and the rest
split the channels in half (Fig. 3 c); conv5 1x1 + BN + ReLU, global pool, dense. The unit
output channels per stage and the conv5 width depend on the scale:

  scale  stage2 stage3 stage4 conv5   paper FLOPs / params (Table 5)
  0.5x      48     96    192   1024    41 M / 1.4 M
  1.0x     116    232    464   1024   146 M / 2.3 M
  1.5x     176    352    704   1024   299 M / 3.5 M
  2.0x     244    488    976   2048   591 M / 7.4 M

(the paper's "FLOPs" are multiply-adds.) Units:

* basic (stride 1): split the input channels in half; the right half goes through 1x1 conv-BN-
  ReLU, 3x3 depthwise conv-BN, 1x1 conv-BN-ReLU; concatenate with the untouched left half, then
  shuffle the channels with 2 groups (Ma et al. §4 / Zhang et al. 2018 ShuffleNet §3.1).
* down-sampling (stride 2): no split; the left branch is 3x3 depthwise (stride 2)-BN, 1x1 conv-
  BN-ReLU, the right branch is the basic unit's branch with a stride-2 depthwise conv; each
  branch gives half the output channels; concatenate and shuffle.

`se=True` adds squeeze-and-excitation (Hu et al. 2018; Ma et al. Table 8 "ShuffleNet v2 with
SE") to the conv branch of every unit, before the concatenation.

`stem='cifar'` uses a stride-1 stem conv and no max-pool (the usual CIFAR adaptation, a 32x32
input reaches stage 4 at 4x4); 'imagenet' is the paper's stem. Conventions (init, BN, dtype) are
those of `jaxml.models.layers`.
"""

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxml.errors import ConfigError
from jaxml.models.fields import bool_field, counts_field, stem_field
from jaxml.models.layers import (
  SqueezeExcite,
  batch_norm,
  check_stem,
  classifier_head,
  conv,
  max_pool_3x3_s2,
)

# Ma et al. 2018 Table 5: output channels of stages 2-4 and of conv5, per scale.
STAGE_CHANNELS = {
  0.5: (48, 96, 192, 1024),
  1.0: (116, 232, 464, 1024),
  1.5: (176, 352, 704, 1024),
  2.0: (244, 488, 976, 2048),
}
STAGE_UNITS = (4, 8, 4)  # Table 5 "Repeat" column (the first unit of a stage has stride 2)
STEM_CHANNELS = 24


def channel_shuffle(x: jnp.ndarray, groups: int) -> jnp.ndarray:
  """NHWC channel shuffle: reshape channels to (groups, c/groups), transpose, flatten."""
  n, h, w, c = x.shape
  x = x.reshape(n, h, w, groups, c // groups)
  return jnp.swapaxes(x, 3, 4).reshape(n, h, w, c)


class ShuffleUnit(nn.Module):
  """One ShuffleNet V2 unit (Fig. 3 c for stride 1, Fig. 3 d for stride 2) of `features` outputs."""

  features: int
  stride: int
  se: bool = False
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    half = self.features // 2
    if self.stride == 1:
      if x.shape[-1] != self.features:
        raise ValueError(f"a stride-1 unit keeps its {x.shape[-1]} channels, not {self.features}.")
      left, right = jnp.split(x, 2, axis=-1)
    else:
      left = conv(x.shape[-1], 3, self.stride, self.dtype, groups=x.shape[-1], name="left_dw")(x)
      left = batch_norm(train, self.dtype, name="left_dw_bn")(left)
      left = conv(half, 1, 1, self.dtype, name="left_pw")(left)
      left = nn.relu(batch_norm(train, self.dtype, name="left_pw_bn")(left))
      right = x
    right = conv(half, 1, 1, self.dtype, name="pw1")(right)
    right = nn.relu(batch_norm(train, self.dtype, name="pw1_bn")(right))
    right = conv(half, 3, self.stride, self.dtype, groups=half, name="dw")(right)
    right = batch_norm(train, self.dtype, name="dw_bn")(right)
    right = conv(half, 1, 1, self.dtype, name="pw2")(right)
    right = nn.relu(batch_norm(train, self.dtype, name="pw2_bn")(right))
    if self.se:
      right = SqueezeExcite(dtype=self.dtype, name="se")(right)
    return channel_shuffle(jnp.concatenate([left, right.astype(left.dtype)], axis=-1), 2)


class ShuffleNetV2(nn.Module):
  """ShuffleNet V2 at `scale` (0.5, 1.0, 1.5, 2.0); `units` overrides Table 5's (4, 8, 4)."""

  num_classes: int
  scale: float = 1.0
  units: tuple[int, ...] = STAGE_UNITS
  se: bool = False
  stem: str = "cifar"
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    check_stem(self.stem)
    if self.scale not in STAGE_CHANNELS:
      raise ValueError(f"scale must be one of {tuple(STAGE_CHANNELS)}, got {self.scale!r}.")
    if len(self.units) != 3 or min(self.units) < 1:
      raise ValueError(f"units must be 3 positive unit counts, got {self.units!r}.")
    *stages, last = STAGE_CHANNELS[self.scale]
    x = x.astype(self.dtype)
    stride = 2 if self.stem == "imagenet" else 1
    x = conv(STEM_CHANNELS, 3, stride, self.dtype, name="stem_conv")(x)
    x = nn.relu(batch_norm(train, self.dtype, name="stem_bn")(x))
    if self.stem == "imagenet":
      x = max_pool_3x3_s2(x)
    for i, (n, features) in enumerate(zip(self.units, stages, strict=True)):
      for j in range(n):
        stride = 2 if j == 0 else 1
        name = f"stage{i + 2}_unit{j + 1}"
        x = ShuffleUnit(features, stride, self.se, self.dtype, name=name)(x, train)
    x = conv(last, 1, 1, self.dtype, name="conv5")(x)
    x = nn.relu(batch_norm(train, self.dtype, name="conv5_bn")(x))
    return classifier_head(x, self.num_classes)


# The registry's names of this family (jaxml.models.registry): config fields and defaults.
MODEL_FIELDS: dict[str, dict[str, Any]] = {
  "shufflenetv2": {"scale": 1.0, "units": (4, 8, 4), "se": False, "stem": "cifar"},
}


def build_model(name: str, num_classes: int, dtype, f: Mapping[str, Any]) -> ShuffleNetV2:
  """The registry's builder of 'shufflenetv2'; ConfigError for an impossible field value."""
  if f["scale"] not in STAGE_CHANNELS or isinstance(f["scale"], bool):
    raise ConfigError(
      f"Model 'shufflenetv2': scale must be one of {', '.join(map(str, STAGE_CHANNELS))} "
      f"(Ma et al. Table 5), got {f['scale']!r}. Set config.model.scale."
    )
  return ShuffleNetV2(
    num_classes,
    scale=float(f["scale"]),
    units=counts_field(name, "units", f["units"], 3),
    se=bool_field(name, "se", f["se"]),
    stem=stem_field(name, f["stem"]),
    dtype=dtype,
  )
