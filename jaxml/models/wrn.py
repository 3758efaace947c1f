"""Wide Residual Networks, WRN-d-k (Zagoruyko & Komodakis 2016, "Wide Residual Networks").

Layout (paper Table 1, B(3,3) blocks): a 3x3 stem with 16 channels, three groups of
n = (d - 4) / 6 pre-activation blocks with 16k / 32k / 64k channels (stride 2 at the start of
groups 2 and 3), then BN-ReLU, global average pool and a dense layer. A block is
BN-ReLU-conv3x3-BN-ReLU-dropout-conv3x3 (He et al. 2016b pre-activation, paper Fig. 1(d) with
dropout between the convs, §2.4), plus an identity shortcut, or a 1x1 conv when the shape changes.

Details follow the widely used PyTorch port (xternalz/WideResNet-pytorch, same numbers as the
authors' code): when a block changes shape, its first BN-ReLU is shared by the residual branch
and the 1x1 shortcut conv. WRN-28-10 has 36,479,194 parameters for 10 classes (BN scale/bias
included). Init, BN and dtype conventions are those of `jaxml.models.layers`.
"""

import numbers
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxml.errors import ConfigError
from jaxml.models.fields import depth_field, int_field
from jaxml.models.layers import batch_norm, classifier_head, conv


class WideBasicBlock(nn.Module):
  """Pre-activation block; dropout (rate `dropout`) between the two convs when training."""

  features: int
  stride: int = 1
  dropout: float = 0.0
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    pre = nn.relu(batch_norm(train, self.dtype, name="bn1")(x))
    y = conv(self.features, 3, self.stride, self.dtype, name="conv1")(pre)
    y = nn.relu(batch_norm(train, self.dtype, name="bn2")(y))
    # Needs the 'dropout' RNG only when train and dropout > 0 (flax skips rate 0).
    y = nn.Dropout(rate=self.dropout, deterministic=not train, name="dropout")(y)
    y = conv(self.features, 3, 1, self.dtype, name="conv2")(y)
    if self.stride != 1 or x.shape[-1] != self.features:
      # The shortcut sees the activated input, as in the reference code.
      return y + conv(self.features, 1, self.stride, self.dtype, name="shortcut_conv")(pre)
    return y + x.astype(y.dtype)


class WideResNet(nn.Module):
  """WRN-`depth`-`width` for 32x32 inputs.

  Attributes:
    depth: total conv depth d, with (d - 4) % 6 == 0 and d >= 10 (28 for WRN-28-10).
    width: widening factor k (10 for WRN-28-10).
    num_classes: logits per example.
    dropout: dropout rate between the two convs of each block (paper uses 0.3 in places).
    dtype: computation dtype; params are float32 and logits float32 whatever it is.
  """

  depth: int
  width: int
  num_classes: int
  dropout: float = 0.0
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    if self.depth < 10 or (self.depth - 4) % 6:
      raise ValueError(
        f"WRN depth must be 6n+4 with n >= 1 (10, 16, 22, 28, ...), got {self.depth}."
      )
    n = (self.depth - 4) // 6
    x = x.astype(self.dtype)
    x = conv(16, 3, 1, self.dtype, name="stem_conv")(x)
    for i, group_width in enumerate((16, 32, 64)):
      for j in range(n):
        stride = 2 if i > 0 and j == 0 else 1
        x = WideBasicBlock(
          group_width * self.width,
          stride,
          self.dropout,
          self.dtype,
          name=f"group{i + 1}_block{j + 1}",
        )(x, train)
    x = nn.relu(batch_norm(train, self.dtype, name="final_bn")(x))
    return classifier_head(x, self.num_classes)


# The registry's names of this family (jaxml.models.registry): config fields and defaults.
MODEL_FIELDS: dict[str, dict[str, Any]] = {"wrn": {"depth": 28, "width": 10, "dropout": 0.0}}


def build_model(name: str, num_classes: int, dtype, f: Mapping[str, Any]) -> WideResNet:
  """The registry's builder of 'wrn'; ConfigError for an impossible field value."""
  depth = depth_field(name, f["depth"], offset=4)
  width = int_field(name, "width", f["width"], 1)
  dropout = f["dropout"]
  if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0 <= dropout < 1:
    raise ConfigError(
      f"Model 'wrn': dropout must be a number in [0, 1), got {dropout!r}. Set config.model.dropout."
    )
  return WideResNet(depth, width, num_classes, dropout=float(dropout), dtype=dtype)
