"""The ShuffleNetV2 choice-block space of Single Path One-Shot NAS (Guo et al., ECCV 2020, §4.1,
Table 1) and DetNAS (Chen et al., NeurIPS 2019, §3.3), as data.

A network is a stem conv, S stages of choice blocks (the first of each stage down-samples), a
1x1 conv to the last width, global pooling and a bias-free linear classifier. Every choice block
picks one of 4 blocks (`CHOICES`; official code megvii-model/SinglePathOneShot
src/Supernet/blocks.py, DetNAS Supernet-ImageNet/shuffle_blocks.py):

* `shufflenet_{3,5,7}x7` (k = 3, 5, 7): the ShuffleNetV2 unit with a k x k depthwise conv:
  main branch 1x1 conv-BN-ReLU, k x k depthwise conv (the block's stride)-BN, 1x1 conv-BN-ReLU;
* `xception_3x3`: the Xception-like branch of three (3x3 depthwise conv-BN, 1x1 conv-BN) with
  ReLU after each 1x1, the stride on the first depthwise conv.

Mid channels are out / 2. A stride-1 block splits its input channels in two (the official
`channel_shuffle`: even channels pass through, odd ones enter the main branch, which gives
out / 2), and concatenates; a down-sampling block (first of a stage) has a projection branch
(k x k depthwise conv (stride)-BN, 1x1 conv-BN-ReLU, keeping the input width) beside a main
branch giving out - in channels. The channel shuffle of ShuffleNetV2 is the even / odd split at
the start of the next block.

Stage tables (`TABLES`): 'spos' = SPOS and DetNAS-300M: blocks 4/4/8/4, widths stem 16, stages
64/160/320/640, last conv 1024 (20 choice blocks, 4**20 architectures); 'detnas_large' =
DetNAS-1.3G: blocks 8/8/16/8, widths 48, 96/240/480/960, 1024 (40 blocks). `width` scales every
width (rounded to a multiple of 4, at least 4) and `stage_blocks` replaces the blocks per stage,
for CPU-sized proxies. `stem='imagenet'` is the
papers' (3x3 conv stride 2, then every stage halves: 224 px ends at 7x7); `stem='cifar'` keeps
32 px inputs large: stride-1 stem and a stride-1 first stage (32 -> 32, 16, 8, 4). `affine`
False drops the BN scale/bias of the choice blocks (SPOS trains its supernet that way; Ning et
al., NeurIPS 2021, recommend it for supernets). The official supernets' dropout before the
classifier is left out (the wrapper's training may add it).

Encoding: int32[num_blocks], the choice index of every block, written as the SPOS README's tuple
`(2,1,0,1,...)`. The array build computes every choice of every block and selects the chosen
one (`jaxml.spaces.base.select`), so it is the supernet: only the chosen blocks' weights get
gradient. The fixed build holds only the chosen blocks, under the same names
(`block{i}/{choice}/...`), so its variables are a sub-tree of the array build's.

FLOPs (MACs) and parameters are additive over blocks: `cost_tables` traces every (block, choice)
once (`jaxml.spaces.counting.module_costs`, shapes only), so `flops` and the jittable
`macs_of` / `is_valid` (a `flops_limit`, SPOS's 330 M at 224 px) are table sums.
"""

from __future__ import annotations

import dataclasses
import functools
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxml.errors import ConfigError
from jaxml.spaces.base import SearchSpace, check_call, select
from jaxml.spaces.counting import module_costs
from jaxml.spaces.ops import _same, batch_norm

CHOICES = ("shufflenet_3x3", "shufflenet_5x5", "shufflenet_7x7", "xception_3x3")
KERNELS = (3, 5, 7, 3)  # depthwise kernel of each choice (also of its projection branch)
# name -> (blocks per stage, (stem width, stage widths..., last conv width))
TABLES = {
  "spos": ((4, 4, 8, 4), (16, 64, 160, 320, 640, 1024)),
  "detnas_large": ((8, 8, 16, 8), (48, 96, 240, 480, 960, 1024)),
}
STEMS = ("cifar", "imagenet")
SMALL = jax.nn.initializers.normal(0.01)  # the official stem conv and classifier init


def scaled(width: int, mult: float) -> int:
  """`width * mult` rounded to a multiple of 4 (even halves of even halves), at least 4."""
  return max(4, int(round(width * mult / 4)) * 4)


def official_init(key, shape, dtype=jnp.float32):
  """The official codes' conv init: N(0, (1 / input channels per group)^2) (DetNAS
  Supernet-ImageNet/detnasnet.py `_initialize_weights`; flax kernels are HWIO, so shape[-2]).
  A plain normal also compiles much faster on CPU than flax's truncated-normal default."""
  return jax.random.normal(key, shape, dtype) / shape[-2]


def conv(features: int, kernel: int, stride: int, name: str, groups: int = 1, init=None) -> nn.Conv:
  """Bias-free conv with the torch 'same' padding (kernel // 2), as the official blocks."""
  return nn.Conv(
    features,
    (kernel, kernel),
    (stride, stride),
    padding=_same(kernel),
    feature_group_count=groups,
    use_bias=False,
    kernel_init=init or official_init,
    name=name,
  )


def _dw_bn(x, kernel: int, stride: int, train: bool, affine: bool, name: str):
  """k x k depthwise conv (stride) + BN, no activation."""
  x = conv(x.shape[-1], kernel, stride, name, groups=x.shape[-1])(x)
  return batch_norm(train, affine, f"{name}_bn")(x)


def _pw_bn(x, features: int, train: bool, affine: bool, name: str, relu: bool = True):
  """1x1 conv + BN (+ ReLU)."""
  x = batch_norm(train, affine, f"{name}_bn")(conv(features, 1, 1, name)(x))
  return nn.relu(x) if relu else x


class ChoiceBlock(nn.Module):
  """One of the 4 blocks (`choice`), `out` output channels, stride 1 or 2; `project` marks the
  first block of a stage (projection branch + main branch; else split + main branch)."""

  choice: int
  out: int
  stride: int
  project: bool
  affine: bool = True

  @nn.compact
  def __call__(self, x, train: bool = False):
    k, a, mid = KERNELS[self.choice], self.affine, self.out // 2
    if self.project:
      keep = _pw_bn(
        _dw_bn(x, k, self.stride, train, a, "proj_dw"), x.shape[-1], train, a, "proj_pw"
      )
      main, main_out = x, self.out - x.shape[-1]
    else:
      keep, main = x[..., 0::2], x[..., 1::2]
      main_out = self.out // 2
    if CHOICES[self.choice].startswith("xception"):
      y = _pw_bn(_dw_bn(main, 3, self.stride, train, a, "dw1"), mid, train, a, "pw1")
      y = _pw_bn(_dw_bn(y, 3, 1, train, a, "dw2"), mid, train, a, "pw2")
      y = _pw_bn(_dw_bn(y, 3, 1, train, a, "dw3"), main_out, train, a, "pw3")
    else:
      y = _pw_bn(main, mid, train, a, "pw1")
      y = _dw_bn(y, k, self.stride, train, a, "dw")
      y = _pw_bn(y, main_out, train, a, "pw2")
    return jnp.concatenate([keep, y], axis=-1)


class ChoicePosition(nn.Module):
  """Block position `name`: the fixed `choice`, or (choice None) every candidate, the one at the
  traced `index` selected. Candidates are children named by choice (`block{i}/<choice name>`)."""

  out: int
  stride: int
  project: bool
  affine: bool = True
  choice: int | None = None

  @nn.compact
  def __call__(self, x, index=None, train: bool = False):
    spec = (self.out, self.stride, self.project, self.affine)
    if self.choice is not None:
      return ChoiceBlock(self.choice, *spec, name=CHOICES[self.choice])(x, train)
    cands = [ChoiceBlock(c, *spec, name=CHOICES[c])(x, train) for c in range(len(CHOICES))]
    return select(cands, index)


def block_strides(blocks: tuple[int, ...], stem: str) -> list[int]:
  """Stride of every choice block: 2 for the first of a stage, except stage 1 under the CIFAR
  stem (which keeps 32 px inputs at full size there)."""
  out = []
  for stage, n in enumerate(blocks):
    first = 2 if stage > 0 or stem == "imagenet" else 1
    out += [first] + [1] * (n - 1)
  return out


def block_widths(blocks: tuple[int, ...], widths: tuple[int, ...]) -> list[int]:
  """Output width of every choice block (its stage's width)."""
  return [w for n, w in zip(blocks, widths[1:-1], strict=True) for _ in range(n)]


class ShuffleNetSPOSNetwork(nn.Module):
  """The SPOS / DetNAS network: array build (arch None, called with `encoding`) or fixed build."""

  blocks: tuple[int, ...]
  widths: tuple[int, ...]
  num_classes: int = 10
  stem: str = "cifar"
  affine: bool = True
  arch: tuple[int, ...] | None = None

  @nn.compact
  def __call__(self, x, encoding=None, train: bool = False):
    bounds = np.full((sum(self.blocks),), len(CHOICES), np.int32)
    encoding = check_call("SPOS ShuffleNetV2", self.arch, encoding, bounds)
    x = conv(self.widths[0], 3, 2 if self.stem == "imagenet" else 1, "stem_conv", init=SMALL)(x)
    x = nn.relu(batch_norm(train, True, "stem_bn")(x))
    starts = set(np.cumsum((0,) + self.blocks[:-1]).tolist())
    strides = block_strides(self.blocks, self.stem)
    for i, (out, stride) in enumerate(zip(block_widths(self.blocks, self.widths), strides)):
      choice = None if self.arch is None else self.arch[i]
      position = ChoicePosition(out, stride, i in starts, self.affine, choice, name=f"block{i}")
      x = position(x, None if encoding is None else encoding[i], train)
    x = _pw_bn(x, self.widths[-1], train, True, "last_conv")
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes, use_bias=False, kernel_init=SMALL, name="classifier")(x)


@dataclasses.dataclass(frozen=True)
class ShuffleNetSPOSSpace(SearchSpace):
  """The SPOS / DetNAS choice-block space with its macro config and an optional FLOPs limit.

  `flops_limit` (MACs per example at `input_size`; 0 = none) makes `is_valid` reject heavier
  architectures, so SPOS evolution resamples them (SPOS: 330 M at 224 px; DetNAS: 300 M).
  """

  table: str = "spos"
  width: float = 1.0
  num_classes: int = 10
  input_size: int = 32
  stem: str = "cifar"
  affine: bool = True
  flops_limit: int = 0
  stage_blocks: tuple[int, ...] = ()

  name = "SPOS ShuffleNetV2"
  OPS = CHOICES

  def __post_init__(self):
    if self.table not in TABLES:
      raise ConfigError(f"SPOS space table={self.table!r}; valid: {', '.join(TABLES)}")
    if self.stem not in STEMS:
      raise ConfigError(f"SPOS space stem={self.stem!r}; valid: {', '.join(STEMS)}")
    if not isinstance(self.width, int | float) or isinstance(self.width, bool) or self.width <= 0:
      raise ConfigError(f"SPOS space width must be a number > 0, got {self.width!r}")
    for field in ("num_classes", "input_size"):
      v = getattr(self, field)
      if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ConfigError(f"SPOS space {field} must be a positive integer, got {v!r}")
    if isinstance(self.flops_limit, bool) or not isinstance(self.flops_limit, int):
      raise ConfigError(f"SPOS space flops_limit must be an integer, got {self.flops_limit!r}")
    if self.flops_limit < 0:
      raise ConfigError(f"SPOS space flops_limit must be >= 0 (0 = none), got {self.flops_limit}")
    sb = self.stage_blocks
    if sb and (
      not isinstance(sb, tuple | list)
      or len(sb) != len(TABLES[self.table][0])
      or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in sb)
    ):
      raise ConfigError(
        f"SPOS space stage_blocks must be {len(TABLES[self.table][0])} integers >= 1 (or () for "
        f"the table's {TABLES[self.table][0]}), got {sb!r}"
      )
    object.__setattr__(self, "stage_blocks", tuple(sb))  # hashable: costs are cached per space
    downs = len(self.blocks) + (1 if self.stem == "imagenet" else 0) - (self.stem == "cifar")
    if self.input_size % 2**downs:
      raise ConfigError(
        f"SPOS space: input_size {self.input_size} must be a multiple of {2**downs} (the "
        f"{self.stem} stem and {len(self.blocks)} stages halve it {downs} times)"
      )

  @property
  def blocks(self) -> tuple[int, ...]:
    return tuple(self.stage_blocks) or TABLES[self.table][0]

  @property
  def widths(self) -> tuple[int, ...]:
    return tuple(scaled(w, self.width) for w in TABLES[self.table][1])

  def bounds(self) -> np.ndarray:
    return np.full((sum(self.blocks),), len(CHOICES), np.int32)

  def describe_position(self, i: int) -> str:
    starts = np.cumsum((0,) + self.blocks)
    if 0 <= i < starts[-1]:
      stage = int(np.searchsorted(starts, i, side="right")) - 1
      return f"choice of block {i} (stage {stage + 1}, block {i - starts[stage] + 1})"
    return super().describe_position(i)

  def to_string(self, enc) -> str:
    return "(" + ",".join(str(v) for v in self.as_arch(enc)) + ")"

  def from_string(self, s: str) -> np.ndarray:
    if not isinstance(s, str) or not re.fullmatch(r"\s*\(?\s*\d+(\s*,\s*\d+)*\s*,?\s*\)?\s*", s):
      raise ConfigError(f"not a SPOS architecture (e.g. '(2,1,0,...)'): {s!r:.80}")
    enc = np.asarray([int(v) for v in re.findall(r"\d+", s)], np.int32)
    self.validate(enc)
    return enc

  # --- costs -------------------------------------------------------------------------------------

  def cost_tables(self, input_size: int | None = None):
    """(stem + last conv + classifier (MACs, params), block MACs int64[L, 4], params [L, 4]).

    Traced once per (space, input size) with `module_costs` (shapes only).
    """
    return _cost_tables(self, self.input_size if input_size is None else int(input_size))

  def _cost(self, enc, input_size, which: int):
    base, macs, params = self.cost_tables(input_size)
    table = (macs, params)[which]
    rows = np.arange(table.shape[0])
    return self._per_encoding(enc, lambda a: base[which] + int(table[rows, list(a)].sum()))

  def flops(self, enc, input_size: int | None = None, channels: int | None = None):
    """MACs per example; `channels` is not a knob of this space (scale with `width`)."""
    if channels is not None:
      raise ConfigError("the SPOS space scales its widths with `width`, not `channels`")
    return self._cost(enc, input_size, 0)

  def params(self, enc, channels: int | None = None, num_classes: int | None = None):
    if channels is not None or num_classes not in (None, self.num_classes):
      raise ConfigError("the SPOS space counts parameters at its own width and classes")
    return self._cost(enc, None, 1)

  def macs_of(self, enc: jax.Array) -> jax.Array:
    """float32[...]: MACs per example of encodings [..., L], jittable (a table sum)."""
    base, macs, _ = self.cost_tables()
    table = jnp.asarray(macs, jnp.float32)
    rows = jnp.arange(table.shape[0])
    return base[0] + table[rows, jnp.asarray(enc, jnp.int32)].sum(-1)

  def is_valid(self, enc: jax.Array) -> jax.Array:
    if not self.flops_limit:
      return super().is_valid(enc)
    return self.macs_of(enc) <= self.flops_limit

  def network(self, arch=None) -> ShuffleNetSPOSNetwork:
    fixed = None if arch is None else self.as_arch(arch)
    return ShuffleNetSPOSNetwork(
      self.blocks, self.widths, self.num_classes, self.stem, self.affine, fixed
    )


@functools.lru_cache(maxsize=16)
def _cost_tables(space: ShuffleNetSPOSSpace, input_size: int):
  """See `ShuffleNetSPOSSpace.cost_tables`: the whole network minus its blocks, and each block."""
  net = dataclasses.replace(space, input_size=input_size).network(
    np.zeros(space.encoding_length, np.int32)
  )
  x = jax.ShapeDtypeStruct((1, input_size, input_size, 3), jnp.float32)
  total_macs, total_params = module_costs(net, x)
  n = space.encoding_length
  macs, params = np.zeros((n, len(CHOICES)), np.int64), np.zeros((n, len(CHOICES)), np.int64)
  starts = set(np.cumsum((0,) + space.blocks[:-1]).tolist())
  h, c_in = input_size // (2 if space.stem == "imagenet" else 1), space.widths[0]
  strides = block_strides(space.blocks, space.stem)
  for i, (out, stride) in enumerate(zip(block_widths(space.blocks, space.widths), strides)):
    xb = jax.ShapeDtypeStruct((1, h, h, c_in), jnp.float32)
    for c in range(len(CHOICES)):
      block = ChoiceBlock(c, out, stride, i in starts, space.affine)
      macs[i, c], params[i, c] = module_costs(block, xb)
    h, c_in = h // stride, out
  base = (total_macs - int(macs[:, 0].sum()), total_params - int(params[:, 0].sum()))
  return base, macs, params
