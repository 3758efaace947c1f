"""The two search spaces of CRNAS (Liang et al., "Computation Reallocation for Object Detection",
ICLR 2020, arXiv 1912.11234, §3.2-3.3) over the ResNets of `jaxml.models.resnet`, and the
backbone-independent machinery they share with the MobileNetV2 spaces of
`jaxml.spaces.crnas_mobilenet`: `StageReallocation`, `DilationReallocation` and `CRSupernet` run
on a small backbone *macro* interface (`_ResNetMacro` documents it: searched stages, analytic
MACs / params, fixed network, supernet stem / block / head).

**Stage reallocation** (`CRStageSpace`, §3.2). A ResNet has four stages; from stage 2 on each
stage halves the resolution and doubles the width, so every block after a stage's first costs
the same multiply-adds in every stage. An allocation tau = [tau_1..tau_4] with sum tau_i = N
(the baseline's block count: ResNet-18 2/2/2/2, N = 8; ResNet-50 3/4/6/3, N = 16) therefore
keeps the baseline's FLOPs. The encoding is int32[4] with enc[i] = tau_i - 1, tau_i in
1..T_i (T_i = `max_blocks[i]`, the supernet's blocks in stage i; the paper's reusable supernet
has T_1, T_2 in 1..10).

"Equal FLOPs", precisely: the MACs of every conv and dense layer (`flops`, checked against the
jaxpr counter `jaxml.metrics.flops.count_flops` and `jaxml.spaces.count_macs` in the tests).
A stage's first block (stride 2, projection shortcut, half-width input) is NOT a regular block
(a basic block's first costs 0.78 of a regular one, a bottleneck's 29/17), which is why every
stage keeps at least its first block: tau_i >= 1 (a stage without blocks would also lose its
downsampling). With tau_i >= 1 the first blocks are common to every allocation and the FLOPs
are `flops(baseline) + sum_i (tau_i - b_i) * regular_i`; regular_i is the same in every stage
when the resolution halves exactly (32 -> 16 -> 8 -> 4, 224 -> 56 -> 28 -> 14 -> 7), so the
FLOPs are then exactly equal; at other sizes (e.g. 28 px: 28 -> 14 -> 7 -> 4) they are not.
An allocation is *eligible* (`is_valid`) when tau_i >= 1, sum tau_i = N and its FLOPs are
within `flops_tolerance` (1 %) of the baseline's. BN, ReLU and additions are not counted (they
are a few % of a convnet's FLOPs and shift slightly with the allocation).

**Spatial reallocation** (`CRDilationSpace`, §3.3). For a fixed allocation, each block's
searchable 3x3 conv (a basic block's second conv, a bottleneck's middle conv, as in the paper)
takes a dilation in {1, 2, 3}; encoding int32[N], the dilation index of each block in stage
order. Dilation changes neither output shapes (padding = dilation) nor FLOPs nor parameters.

Networks (the `SearchSpace` contract): the fixed build of an encoding is the plain
`jaxml.models.resnet.ResNet` with `stage_sizes = tau` (and `dilations`); the array build is
`CRSupernet`, whose variables carry the same names, so weights move between the two and a
supernet called with an architecture computes exactly the plain ResNet with those weights.

* stage supernet: stage i computes its T_i blocks in sequence and returns the output after
  tau_i blocks (`select` over the T_i prefixes). Blocks past tau_i run (their BN statistics
  move in training) but get no gradient; the cost is the supernet's (sum T_i blocks).
* operation supernet: every block's searchable conv is a `DilatedConv`: ONE 3x3 kernel applied
  with the chosen dilation. Chosen over one kernel per dilation because (a) the fixed build of
  any dilation choice then is the plain ResNet with the same variables (dilation is not a
  parameter), so the supernet trains exactly the weights the searched network inherits;
  (b) the supernet has the baseline's parameters, with no per-dilation kernel trained on only
  1/3 of the steps; (c) one-shot weight sharing across ops of one shape is the SPOS/DetNAS
  practice. The paper does not say which it used (its supernet details are in an appendix
  that was not available).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxml.errors import ConfigError
from jaxml.models.layers import STEMS, classifier_head
from jaxml.models.resnet import BLOCKS, ResNet, resnet_stem
from jaxml.spaces.base import SearchSpace, check_call, randint, select
from jaxml.spaces.resnet_costs import resnet_macs, resnet_params

DILATIONS = (1, 2, 3)
BASELINES = {"resnet18": (2, 2, 2, 2), "resnet50": (3, 4, 6, 3), "resnet101": (3, 4, 23, 3)}
BLOCK_OF = {"resnet18": "basic", "resnet50": "bottleneck", "resnet101": "bottleneck"}


@dataclasses.dataclass(frozen=True)
class _ResNetMacro:
  """The ResNet skeleton around the searched choices: the backbone interface both CRNAS spaces
  and `CRSupernet` use (a MobileNetV2 one is `jaxml.spaces.crnas_mobilenet._MobileNetMacro`).

  The interface: `num_stages` (searched stages), `equal_block_total` (eligibility also asks for
  the baseline's block total), `searched_stages` (their indices among the network's stages),
  `all_blocks(sizes)` (blocks of every network stage), `macs_of` / `params_of`,
  `fixed_network(sizes, dilations)`, `macro()` (the bare, hashable macro) and the supernet hooks
  `stem`, `block`, `head` (called in the supernet's scope, so variables get the fixed build's
  names)."""

  width: int = 64
  block: str = "basic"
  num_classes: int = 10
  input_size: int = 32
  stem: str = "cifar"

  num_stages: ClassVar[int] = 4
  equal_block_total: ClassVar[bool] = True
  searched_stages: ClassVar[tuple[int, ...]] = (0, 1, 2, 3)

  @property
  def stage_widths(self) -> tuple[int, ...]:
    return tuple(self.width * 2**i for i in range(4))

  def _check_macro(self) -> None:
    if self.block not in BLOCKS:
      raise ConfigError(f"CRNAS block must be one of {tuple(BLOCKS)}, got {self.block!r}")
    if self.stem not in STEMS:
      raise ConfigError(f"CRNAS stem must be one of {STEMS}, got {self.stem!r}")
    if self.width < 1 or self.num_classes < 1 or self.input_size < 1:
      raise ConfigError("CRNAS width, num_classes and input_size must be >= 1")

  def macro(self) -> _ResNetMacro:
    return _ResNetMacro(**{f.name: getattr(self, f.name) for f in dataclasses.fields(_ResNetMacro)})

  def all_blocks(self, sizes) -> tuple[int, ...]:
    return tuple(int(n) for n in sizes)

  def macs_of(self, sizes, input_size=None, channels=None) -> int:
    widths = self.stage_widths if channels is None else tuple(channels * 2**i for i in range(4))
    size = self.input_size if input_size is None else input_size
    return resnet_macs(sizes, widths, self.block, size, self.num_classes, self.stem)

  def params_of(self, sizes, channels=None, num_classes=None) -> int:
    widths = self.stage_widths if channels is None else tuple(channels * 2**i for i in range(4))
    classes = self.num_classes if num_classes is None else num_classes
    return resnet_params(sizes, widths, self.block, classes, self.stem)

  def fixed_network(self, sizes, dilations=None) -> ResNet:
    """The plain ResNet with `sizes` blocks per stage (the spaces' fixed build)."""
    return ResNet(
      stage_sizes=tuple(sizes),
      stage_widths=self.stage_widths,
      num_classes=self.num_classes,
      block=self.block,
      stem=self.stem,
      dilations=None if dilations is None else tuple(dilations),
    )

  def stem_layers(self, x, train: bool, dtype):
    return resnet_stem(x, self.stage_widths[0], self.stem, train, dtype)

  def block_layer(self, stage: int, j: int, name: str, dtype, choices=()) -> nn.Module:
    stride = 2 if stage > 0 and j == 0 else 1
    width = self.stage_widths[stage]
    return BLOCKS[self.block](width, stride, dtype=dtype, dilation_choices=choices, name=name)

  def head_layers(self, x, train: bool, dtype):
    del train, dtype
    return classifier_head(x, self.num_classes)


class StageReallocation(SearchSpace):
  """CRNAS §3.2's stage space over a backbone macro (see `_ResNetMacro` for the interface).

  Concrete spaces are frozen dataclasses mixing a macro with this and declaring `baseline`,
  `max_blocks` and `flops_tolerance`. tau_i in 1..max_blocks[i]; eligible: MACs within
  `flops_tolerance` of the baseline's and, when the macro has `equal_block_total` (ResNets),
  sum tau = sum baseline."""

  def __post_init__(self):
    self._check_macro()
    b, t, n = tuple(self.baseline), tuple(self.max_blocks), self.num_stages
    if len(b) != n or len(t) != n or min(b) < 1 or min(t) < 1:
      raise ConfigError(
        f"CRNAS stage space: baseline and max_blocks are {n} integers >= 1, got {b}, {t}"
      )
    if any(bi > ti for bi, ti in zip(b, t, strict=True)):
      raise ConfigError(f"CRNAS stage space: baseline {b} exceeds the supernet's blocks {t}")
    if not self.flops_tolerance >= 0:
      raise ConfigError(f"CRNAS flops_tolerance must be >= 0, got {self.flops_tolerance}")

  @property
  def total_blocks(self) -> int:
    return sum(self.baseline)

  def bounds(self) -> np.ndarray:
    return np.asarray(self.max_blocks, np.int32)

  def describe_position(self, i: int) -> str:
    return f"stage {self.searched_stages[i] + 1} blocks - 1"

  def allocation(self, enc) -> tuple[int, ...]:
    """tau (blocks per searched stage) of one encoding."""
    return tuple(v + 1 for v in self.as_arch(enc))

  def encode(self, tau: Sequence[int]) -> np.ndarray:
    """The encoding of allocation tau (ConfigError if it is outside the supernet)."""
    enc = np.asarray(tau, np.int64) - 1
    self.validate(enc)
    return enc.astype(np.int32)

  # MACs are linear in tau (see the module docstring): base + sum_i enc_i * regular_i.
  def _linear_macs(self) -> tuple[int, np.ndarray]:
    n = self.num_stages
    base = self.macs_of((1,) * n)
    regular = [self.macs_of(tuple(1 + (i == s) for i in range(n))) - base for s in range(n)]
    return base, np.asarray(regular, np.int64)

  def is_valid(self, enc: jax.Array) -> jax.Array:
    """Eligible: MACs within `flops_tolerance` of the baseline's (and sum tau = N if the macro
    keeps the block total), jittable."""
    enc = jnp.asarray(enc, jnp.int32)
    base, regular = self._linear_macs()
    base, target = float(base), float(self.macs_of(self.baseline))  # Python ints overflow int32
    # float32 (JAX's default; no int64): its relative error 6e-8 is far below the tolerance.
    macs = base + jnp.sum(enc.astype(jnp.float32) * jnp.asarray(regular, jnp.float32), -1)
    ok = jnp.abs(macs - target) <= self.flops_tolerance * target
    if self.equal_block_total:
      ok = ok & (jnp.sum(enc + 1, -1) == self.total_blocks)
    return ok

  def eligible(self) -> np.ndarray:
    """int32[M, stages]: every eligible encoding, in mixed-radix order (exact int64 MACs)."""
    grid = self.enumerate().astype(np.int64)
    base, regular = self._linear_macs()
    target = self.macs_of(self.baseline)
    ok = np.abs(base + grid @ regular - target) <= self.flops_tolerance * target
    if self.equal_block_total:
      ok &= (grid + 1).sum(1) == self.total_blocks
    return grid[ok].astype(np.int32).reshape(-1, self.num_stages)

  def sample(self, key: jax.Array, n: int) -> jax.Array:
    """n allocations drawn uniformly from the eligible ones."""
    table = jnp.asarray(self.eligible())
    return table[randint(key, (n,), table.shape[0])]

  def sample_branches(self, key: jax.Array, n: int) -> jax.Array:
    """n encodings with each stage's branch drawn uniformly and independently (the paper's
    supernet training: one branch per stage per batch; the total is not constrained)."""
    return SearchSpace.sample(self, key, n)

  def to_string(self, enc) -> str:
    return "-".join(str(t) for t in self.allocation(enc))

  def from_string(self, s: str) -> np.ndarray:
    example = "-".join(str(b) for b in self.baseline)
    try:
      tau = [int(p) for p in str(s).split("-")]
    except ValueError as e:
      raise ConfigError(f"CRNAS allocation must look like {example!r}, got {s!r}") from e
    if len(tau) != self.num_stages:
      raise ConfigError(f"CRNAS allocation must have {self.num_stages} stages, got {s!r}")
    return self.encode(tau)

  def flops(self, enc, input_size: int | None = None, channels: int | None = None):
    return self._per_encoding(enc, lambda a: self.macs_of([v + 1 for v in a], input_size, channels))

  def params(self, enc, channels: int | None = None, num_classes: int | None = None):
    return self._per_encoding(
      enc, lambda a: self.params_of([v + 1 for v in a], channels, num_classes)
    )

  def network(self, arch=None) -> nn.Module:
    if arch is not None:
      return self.fixed_network(self.all_blocks(self.allocation(arch)))
    return CRSupernet(self.macro(), self.all_blocks(self.max_blocks), "stage")


class DilationReallocation(SearchSpace):
  """CRNAS §3.3's spatial space over a backbone macro: the dilation index (into `dilations`) of
  every block's searchable 3x3 conv, for one allocation (blocks of the searched stages; the
  macro's `all_blocks` adds any fixed ones). Concrete spaces declare `allocation`, `dilations`."""

  def __post_init__(self):
    self._check_macro()
    if len(self.allocation) != self.num_stages or min(self.allocation) < 1:
      raise ConfigError(
        f"CRNAS allocation must be {self.num_stages} integers >= 1, got {self.allocation}"
      )
    if len(self.dilations) < 1 or min(self.dilations) < 1:
      raise ConfigError(f"CRNAS dilations must be integers >= 1, got {self.dilations}")

  @property
  def network_blocks(self) -> tuple[int, ...]:
    return self.all_blocks(self.allocation)

  def bounds(self) -> np.ndarray:
    return np.full((sum(self.network_blocks),), len(self.dilations), np.int32)

  def block_names(self) -> list[str]:
    blocks = self.network_blocks
    return [f"stage{i + 1}_block{j + 1}" for i, n in enumerate(blocks) for j in range(n)]

  def describe_position(self, i: int) -> str:
    return f"dilation of {self.block_names()[i]}"

  def dilation_values(self, enc) -> tuple[int, ...]:
    return tuple(self.dilations[v] for v in self.as_arch(enc))

  def to_string(self, enc) -> str:
    """Dilations per network stage, e.g. '1,1|1,2|2,3|3,3'."""
    d = iter(self.dilation_values(enc))
    return "|".join(",".join(str(next(d)) for _ in range(n)) for n in self.network_blocks)

  def from_string(self, s: str) -> np.ndarray:
    stages = str(s).split("|")
    try:
      values = [[int(v) for v in st.split(",")] for st in stages]
    except ValueError as e:
      raise ConfigError(f"CRNAS dilations must look like '1,1|1,2|2,3|3,3', got {s!r}") from e
    if [len(v) for v in values] != list(self.network_blocks):
      raise ConfigError(f"CRNAS dilations {s!r} do not match the blocks {self.network_blocks}")
    flat = [v for st in values for v in st]
    bad = [v for v in flat if v not in self.dilations]
    if bad:
      raise ConfigError(f"CRNAS dilation {bad[0]} is not one of {self.dilations}")
    return np.asarray([self.dilations.index(v) for v in flat], np.int32)

  def flops(self, enc, input_size: int | None = None, channels: int | None = None):
    return self._per_encoding(enc, lambda a: self.macs_of(self.allocation, input_size, channels))

  def params(self, enc, channels: int | None = None, num_classes: int | None = None):
    return self._per_encoding(enc, lambda a: self.params_of(self.allocation, channels, num_classes))

  def network(self, arch=None) -> nn.Module:
    if arch is not None:
      return self.fixed_network(self.network_blocks, self.dilation_values(arch))
    return CRSupernet(self.macro(), self.network_blocks, "dilation", tuple(self.dilations))


@dataclasses.dataclass(frozen=True)
class CRStageSpace(_ResNetMacro, StageReallocation):
  """ResNet stage allocations tau: tau_i in 1..max_blocks[i], sum = sum(baseline), equal FLOPs."""

  name = "crnas_stage"
  baseline: tuple[int, ...] = (2, 2, 2, 2)
  max_blocks: tuple[int, ...] = (5, 5, 5, 5)
  flops_tolerance: float = 0.01


@dataclasses.dataclass(frozen=True)
class CRDilationSpace(_ResNetMacro, DilationReallocation):
  """Dilation index (into `dilations`) of every ResNet block's searchable 3x3 conv."""

  name = "crnas_dilation"
  allocation: tuple[int, ...] = (2, 2, 2, 2)
  dilations: tuple[int, ...] = DILATIONS


class CRSupernet(nn.Module):
  """The array build of the CRNAS spaces of any macro (variables named as its fixed build's).

  `stage_blocks`: the blocks of every network stage. search='stage': `encoding` int[searched
  stages] = tau - 1; a searched stage runs its `stage_blocks[i]` blocks and keeps the output
  after tau_i of them. search='dilation': `encoding` int[sum stage_blocks] is the dilation index
  of every block's searchable conv.
  """

  macro: object  # a backbone macro (`_ResNetMacro` interface), frozen and hashable
  stage_blocks: tuple[int, ...]
  search: str = "stage"
  dilations: tuple[int, ...] = DILATIONS
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool = False, encoding=None) -> jnp.ndarray:
    searched = self.macro.searched_stages
    bounds = (
      np.asarray([self.stage_blocks[i] for i in searched], np.int32)
      if self.search == "stage"
      else np.full((sum(self.stage_blocks),), len(self.dilations), np.int32)
    )
    encoding = check_call(f"crnas_{self.search}", None, encoding, bounds)
    x = self.macro.stem_layers(x, train, self.dtype)
    position = 0
    for i, size in enumerate(self.stage_blocks):
      prefixes = []
      for j in range(size):
        name = f"stage{i + 1}_block{j + 1}"
        if self.search == "dilation":
          block = self.macro.block_layer(i, j, name, self.dtype, self.dilations)
          x = block(x, train, dilation_index=encoding[position])
          position += 1
        else:
          x = self.macro.block_layer(i, j, name, self.dtype)(x, train)
          prefixes.append(x)
      if self.search == "stage" and i in searched:
        x = select(prefixes, encoding[searched.index(i)])
    return self.macro.head_layers(x, train, self.dtype)
