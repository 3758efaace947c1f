"""FishNet-99 / -150 (Sun et al. 2018, "FishNet: A Versatile Backbone for Image, Region, and
Pixel Level Prediction", NeurIPS; §3 and Fig. 2-3), following the authors' reference code
(kevin-ssy/FishNet, models/fishnet.py and net_factory.py).

Stages over the 11 "network planes" (64 | 128, 256, 512 | 512 | 512, 384, 256 | 320, 832, 1600
channels; 224 px input):

* stem: three 3x3 conv-BN-ReLU (32 stride 2, 32, 64) and a 3x3 max-pool with stride 2 (56x56).
* tail (3 stages, 56 -> 7): pre-activation bottleneck blocks (BN-ReLU-conv 1x1 / 3x3 / 1x1, width
  planes / 4), then a 2x2 max-pool. A block changing the channel count has a BN-ReLU-1x1-conv
  shortcut, as in a pre-activation ResNet.
* bridge (7x7): BN-ReLU-1x1 conv to half the channels, BN-ReLU, 1x1 conv (with bias) to twice
  them; the blocks of the stage on that, gated by an SE-like attention branch (BN, ReLU, pool,
  1x1 down 16x, ReLU, 1x1 up, sigmoid): out = blocks(x) * a + a.
* body (3 stages, 7 -> 56, up-sampling): the first block is an "UP" block whose shortcut sums
  each group of k = c_in / c_out adjacent channels (channel-wise reduction, §3.2 - no 1x1
  convolution on the shortcut, which is what lets gradients reach the shallow layers directly),
  its 3x3 convs dilated 2^(stage index); then nearest 2x up-sampling, and the tail feature of
  the same resolution, refined by "transferring" blocks, is concatenated ("preserve-and-refine").
* head (3 stages, 56 -> 7): blocks on the concatenated feature, 2x2 max-pool, concatenation with
  the body feature of the same resolution (refined by transferring blocks), and the score
  layer: BN-ReLU-1x1 conv to half, BN-ReLU, global pool, 1x1 conv (bias) to the classes.

Blocks per stage (`num_res_blks` / `num_trans_blks` of net_factory.py): FishNet-99
(2,2,6,2 | 1,1,1,1 | 2,2) / (1,1,1 | 1,1,4), FishNet-150 (2,4,8,4 | 2,2,2,2 | 2,4) /
(2,2,2 | 2,2,4). Parameters at 1000 classes (Sun et al. Table 1): 16.62 M and 24.96 M.

`width` scales every network plane by width / 64 (64 is the paper's net; a multiple of 4 keeps
every channel count integral); `stem='cifar'` makes the first stem conv stride 1 and drops the
stem max-pool, so a 32x32 input meets the bridge at 4x4 (224 px with 'imagenet' meets it at
7x7). The input side must be a multiple of 8 ('cifar') or 32 ('imagenet'). Conventions (init,
BN, dtype) are those of `jaxml.models.layers`; the 1x1 score and attention convs have biases as in
the reference code.
"""

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxml.errors import ConfigError
from jaxml.models.fields import int_field, stem_field
from jaxml.models.layers import batch_norm, check_stem, conv, dense_kernel_init, max_pool_3x3_s2

PLANES = (64, 128, 256, 512, 512, 512, 384, 256, 320, 832, 1600)  # net_factory.py, width 64
CONFIGS = {  # (num_res_blks, num_trans_blks) of net_factory.py
  99: ((2, 2, 6, 2, 1, 1, 1, 1, 2, 2), (1, 1, 1, 1, 1, 4)),
  150: ((2, 4, 8, 4, 2, 2, 2, 2, 2, 4), (2, 2, 2, 2, 2, 4)),
}
NUM_DOWN, NUM_UP = 3, 3
# Which earlier feature (index into the list [stem, stage 1 out, stage 2 out, ...]) each body /
# head stage concatenates: the one of the same resolution (reference `trans_map`).
TRANS_MAP = (2, 1, 0, 6, 5, 4)


def bn_relu(x, train: bool, dtype, name: str):
  return nn.relu(batch_norm(train, dtype, name=name)(x))


class FishBlock(nn.Module):
  """Pre-activation bottleneck (width features / 4). `up_k` > 0 makes it an UP block whose
  shortcut sums groups of `up_k` adjacent channels instead of convolving."""

  features: int
  dilation: int = 1
  up_k: int = 0
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    width = self.features // 4
    y = conv(width, 1, 1, self.dtype, name="conv1")(bn_relu(x, train, self.dtype, "bn1"))
    y = bn_relu(y, train, self.dtype, "bn2")
    y = conv(width, 3, 1, self.dtype, dilation=self.dilation, name="conv2")(y)
    y = conv(self.features, 1, 1, self.dtype, name="conv3")(bn_relu(y, train, self.dtype, "bn3"))
    c = x.shape[-1]
    if self.up_k:
      if c != self.up_k * self.features:
        raise ValueError(f"UP block: {c} input channels are not {self.up_k} x {self.features}.")
      residual = x.reshape(*x.shape[:-1], self.features, self.up_k).sum(-1)
    elif c != self.features:
      residual = conv(self.features, 1, 1, self.dtype, name="shortcut")(
        bn_relu(x, train, self.dtype, "shortcut_bn")
      )
    else:
      residual = x
    return y + residual.astype(y.dtype)


class FishNet(nn.Module):
  """FishNet-`depth` (99 or 150) with planes scaled by `width` / 64 (see the module docstring)."""

  num_classes: int
  depth: int = 99
  width: int = 64
  stem: str = "cifar"
  dtype: jnp.dtype = jnp.float32

  def _blocks(self, x, n: int, features: int, train: bool, name: str, up_k=0, dilation=1):
    for i in range(n):
      first = i == 0
      x = FishBlock(
        features,
        dilation=dilation if (up_k or not first) else 1,
        up_k=up_k if first else 0,
        dtype=self.dtype,
        name=f"{name}{i + 1}",
      )(x, train)
    return x

  def _score(self, x, out: int, train: bool, name: str, pool: bool):
    """Reference `_make_score`: BN-ReLU-1x1 conv to half, BN-ReLU, (pool), 1x1 conv with bias."""
    half = x.shape[-1] // 2
    x = conv(half, 1, 1, self.dtype, name=f"{name}_conv")(
      bn_relu(x, train, self.dtype, f"{name}_bn")
    )
    x = bn_relu(x, train, self.dtype, f"{name}_bn_out")
    if pool:
      x = jnp.mean(x.astype(jnp.float32), axis=(1, 2), keepdims=True)
      return nn.Conv(
        out, (1, 1), dtype=jnp.float32, param_dtype=jnp.float32, kernel_init=dense_kernel_init,
        bias_init=nn.initializers.zeros, name=f"{name}_fc",
      )(x)  # fmt: skip
    return conv(out, 1, 1, self.dtype, use_bias=True, name=f"{name}_fc")(x)

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    check_stem(self.stem)
    if self.depth not in CONFIGS:
      raise ValueError(f"depth must be one of {tuple(CONFIGS)}, got {self.depth!r}.")
    if self.width < 4 or self.width % 4:
      raise ValueError(f"width must be a positive multiple of 4, got {self.width!r}.")
    factor = 32 if self.stem == "imagenet" else 8
    if x.shape[1] % factor or x.shape[2] % factor:
      # A resolution the up-sampling cannot mirror is the user's config, hence a ConfigError.
      raise ConfigError(
        f"FishNet with the {self.stem!r} stem needs an input side divisible by {factor} (its "
        f"max-pools and 2x up-samplings must meet), got {x.shape[1]}x{x.shape[2]}. "
        "Set config.data.resolution."
      )
    n_res, n_trans = CONFIGS[self.depth]
    stem_planes, *planes = (p * self.width // 64 for p in PLANES)
    x = x.astype(self.dtype)
    imagenet = self.stem == "imagenet"
    x = bn_relu(conv(stem_planes // 2, 3, 2 if imagenet else 1, self.dtype, name="stem_conv1")(x),
                train, self.dtype, "stem_bn1")  # fmt: skip
    x = bn_relu(conv(stem_planes // 2, 3, 1, self.dtype, name="stem_conv2")(x), train, self.dtype,
                "stem_bn2")  # fmt: skip
    x = bn_relu(conv(stem_planes, 3, 1, self.dtype, name="stem_conv3")(x), train, self.dtype,
                "stem_bn3")  # fmt: skip
    if imagenet:
      x = max_pool_3x3_s2(x)
    feats = [x]  # feats[i] is the input of stage i (the output of stage i - 1)
    for i, features in enumerate(planes):
      name = f"stage{i + 1}"
      if i < NUM_DOWN:  # tail: blocks, 2x2 max-pool
        y = self._blocks(x, n_res[i], features, train, f"{name}_block")
        x = nn.max_pool(y, (2, 2), strides=(2, 2))
      elif i == NUM_DOWN:  # bridge: score layer, blocks gated by the SE-like attention
        s = self._score(x, 2 * features, train, f"{name}_score", pool=False)
        a = bn_relu(s, train, self.dtype, f"{name}_se_bn")
        a = jnp.mean(a, axis=(1, 2), keepdims=True)
        a = nn.relu(conv(features // 16, 1, 1, self.dtype, use_bias=True, name=f"{name}_se_sq")(a))
        a = nn.sigmoid(conv(features, 1, 1, self.dtype, use_bias=True, name=f"{name}_se_ex")(a))
        x = self._blocks(s, n_res[i], features, train, f"{name}_block") * a + a
      else:  # body (up-sampling) or head (down-sampling): trunk, then concat the refined branch
        j = i - NUM_DOWN - 1
        if i <= NUM_DOWN + NUM_UP:
          k, dilation = x.shape[-1] // features, 2**j
          y = self._blocks(x, n_res[i], features, train, f"{name}_block", up_k=k, dilation=dilation)
          y = jnp.repeat(jnp.repeat(y, 2, axis=1), 2, axis=2)  # nearest 2x (nn.Upsample)
        else:
          y = self._blocks(x, n_res[i], features, train, f"{name}_block")
          y = nn.max_pool(y, (2, 2), strides=(2, 2))
        branch = feats[TRANS_MAP[j]]
        branch = self._blocks(branch, n_trans[j], branch.shape[-1], train, f"{name}_trans")
        x = jnp.concatenate([y, branch.astype(y.dtype)], axis=-1)
      feats.append(x)
    logits = self._score(x, self.num_classes, train, "score", pool=True)
    return logits.reshape(logits.shape[0], -1).astype(jnp.float32)


# The registry's names of this family (jaxml.models.registry): config fields and defaults.
MODEL_FIELDS: dict[str, dict[str, Any]] = {
  "fishnet99": {"width": 64, "stem": "cifar"},
  "fishnet150": {"width": 64, "stem": "cifar"},
}


def build_model(name: str, num_classes: int, dtype, f: Mapping[str, Any]) -> FishNet:
  """The registry's builder of 'fishnet99' / 'fishnet150'; ConfigError for a bad field value."""
  width = int_field(name, "width", f["width"], 4)
  if width % 4:
    raise ConfigError(
      f"Model {name!r}: width must be a multiple of 4 (64 is the paper's net), got {width}. "
      "Set config.model.width."
    )
  depth = int(name[len("fishnet") :])
  return FishNet(
    num_classes, depth=depth, width=width, stem=stem_field(name, f["stem"]), dtype=dtype
  )
