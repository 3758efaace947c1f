"""CRNAS's two search spaces (Liang et al., "Computation Reallocation for Object Detection",
ICLR 2020, arXiv 1912.11234, §3.2-3.3) over the MobileNetV2 of `jaxml.models.mobilenet`; the
generic machinery (`StageReallocation`, `DilationReallocation`, `CRSupernet`) is in
`jaxml.spaces.crnas`, and this module gives the MobileNetV2 macro it runs on.

**Stage reallocation** (`CRMobileStageSpace`). The five middle groups of Sandler et al.'s
Table 2 (24, 32, 64, 96 and 160 channels; baseline repeats 2/3/4/3/3) are searched; groups 1
(16 channels) and 7 (320 channels) keep their single block. Encoding int32[5], enc[i] =
tau_i - 1 with tau_i in 1..T_i (`max_blocks`). A group's blocks after its first are identical
(stride 1, same channels), so MACs are linear in tau: MACs(tau) = MACs(baseline) + sum_i
(tau_i - b_i) * regular_i (as for the ResNets). Unlike a ResNet, regular_i differs between
groups (width and resolution do not trade off: at 32 px, CIFAR stem, 1.0x, a regular block
of groups 2-6 costs 8.40 / 3.59 / 3.37 / 7.41 / 5.05 M MACs; the 88.0 M of the baseline), so no
block total keeps the FLOPs. The paper gives MobileNetV2 only as a
result at equal FLOPs (121.1 vs 121.4 GFLOPs for the detector; its MobileNetV2 space is in an
appendix not retrieved), so here **an allocation is eligible when 1 <= tau_i <= T_i and its
MACs are within `flops_tolerance` (1 %) of the baseline's**; no block total is imposed (the
ResNets keep theirs: sum tau = N and within the tolerance).

**Spatial reallocation** (`CRMobileDilationSpace`). Every inverted-residual block's 3x3
depthwise conv (groups 1 and 7 included) takes a dilation in {1, 2, 3} (padding = dilation, so
no shape, parameter or MAC changes), with ONE shared depthwise kernel in the supernet
(`jaxml.models.layers.DilatedConv` with groups = channels; why one kernel: `jaxml.spaces.crnas`).
Encoding int32[sum of all seven groups' blocks]; notation '1|1,2|...' per group.

The fixed build is the plain `MobileNetV2(blocks=(1, *tau, 1), dilations=...)`; the array build
is `jaxml.spaces.crnas.CRSupernet` with this macro, whose variables carry the same names.
MACs / params are analytic (`mobilenet_macs`, `mobilenet_params`, checked against
`jaxml.spaces.count_macs` and the jaxpr counter in the tests; BN, ReLU6 and additions are not
counted).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import ClassVar

import flax.linen as nn

from jaxml.errors import ConfigError
from jaxml.models.layers import STEMS
from jaxml.models.mobilenet import (
  STAGES,
  InvertedResidual,
  MobileNetV2,
  group_layout,
  last_channels,
  mobilenet_head,
  mobilenet_stem,
  stem_channels,
)
from jaxml.spaces.crnas import DILATIONS, DilationReallocation, StageReallocation

# Table 2's repeats of the five searched groups (24/32/64/96/160 channels).
MOBILENET_BASELINE = tuple(s[2] for s in STAGES[1:6])


def _out_size(size: int, stride: int) -> int:
  return (size - 1) // stride + 1  # a 3x3 conv with padding 1 (or a 1x1 conv, stride 1)


def mobilenet_macs(
  blocks: Sequence[int], width_mult: float, input_size: int, num_classes: int, stem: str
) -> int:
  """MACs per example of `MobileNetV2(blocks, width_mult, stem)` (convs, k*k*C_in/groups*C_out
  *H_out*W_out, and the classifier's C*classes + classes: `jaxml.spaces.count_macs`)."""
  size = _out_size(input_size, 1 if stem == "cifar" else 2)
  c = stem_channels(width_mult)
  macs = 27 * c * size * size
  for i, n in enumerate(blocks):
    t, features, first_stride = group_layout(i, width_mult, stem)
    for j in range(n):
      hidden = c * t
      if t != 1:
        macs += c * hidden * size * size  # 1x1 expansion at the input resolution
      size = _out_size(size, first_stride if j == 0 else 1)
      macs += (9 * hidden + hidden * features) * size * size  # depthwise + projection
      c = features
  last = last_channels(width_mult)
  return macs + c * last * size * size + last * num_classes + num_classes


def mobilenet_params(blocks: Sequence[int], width_mult: float, num_classes: int) -> int:
  """Trainable parameters of that MobileNetV2 (conv kernels, BN scale + bias, classifier)."""
  c = stem_channels(width_mult)
  total = 27 * c + 2 * c
  for i, n in enumerate(blocks):
    t, features, _ = group_layout(i, width_mult, "cifar")
    for _ in range(n):
      hidden = c * t
      total += (c * hidden + 2 * hidden if t != 1 else 0) + 11 * hidden
      total += hidden * features + 2 * features
      c = features
  last = last_channels(width_mult)
  return total + c * last + 2 * last + last * num_classes + num_classes


@dataclasses.dataclass(frozen=True)
class _MobileNetMacro:
  """The MobileNetV2 skeleton: the backbone interface of `jaxml.spaces.crnas._ResNetMacro`
  (searched stages: Table 2's groups 2-6; groups 1 and 7 keep one block)."""

  width_mult: float = 1.0
  num_classes: int = 10
  input_size: int = 32
  stem: str = "cifar"

  num_stages: ClassVar[int] = 5
  equal_block_total: ClassVar[bool] = False  # regular blocks differ in cost between groups
  searched_stages: ClassVar[tuple[int, ...]] = (1, 2, 3, 4, 5)

  def _check_macro(self) -> None:
    if self.stem not in STEMS:
      raise ConfigError(f"CRNAS stem must be one of {STEMS}, got {self.stem!r}")
    if not self.width_mult > 0 or self.num_classes < 1 or self.input_size < 1:
      raise ConfigError("CRNAS MobileNetV2: width_mult > 0, num_classes and input_size >= 1")

  def macro(self) -> _MobileNetMacro:
    fields = dataclasses.fields(_MobileNetMacro)
    return _MobileNetMacro(**{f.name: getattr(self, f.name) for f in fields})

  def all_blocks(self, sizes) -> tuple[int, ...]:
    return (1, *(int(n) for n in sizes), 1)

  def macs_of(self, sizes, input_size=None, channels=None) -> int:
    self._no_channels(channels)
    size = self.input_size if input_size is None else input_size
    blocks = self.all_blocks(sizes)
    return mobilenet_macs(blocks, self.width_mult, size, self.num_classes, self.stem)

  def params_of(self, sizes, channels=None, num_classes=None) -> int:
    self._no_channels(channels)
    classes = self.num_classes if num_classes is None else num_classes
    return mobilenet_params(self.all_blocks(sizes), self.width_mult, classes)

  @staticmethod
  def _no_channels(channels) -> None:
    if channels is not None:
      raise ConfigError(
        "CRNAS MobileNetV2 spaces take no `channels` override: their width is width_mult"
      )

  def fixed_network(self, blocks, dilations=None) -> MobileNetV2:
    """The plain MobileNetV2 with `blocks` per group (all seven) and depthwise `dilations`."""
    return MobileNetV2(
      self.num_classes,
      width_mult=self.width_mult,
      blocks=tuple(blocks),
      stem=self.stem,
      dilations=None if dilations is None else tuple(dilations),
    )

  def stem_layers(self, x, train: bool, dtype):
    return mobilenet_stem(x, self.width_mult, self.stem, train, dtype)

  def block_layer(self, stage: int, j: int, name: str, dtype, choices=()) -> nn.Module:
    t, features, first_stride = group_layout(stage, self.width_mult, self.stem)
    stride = first_stride if j == 0 else 1
    return InvertedResidual(features, stride, t, dtype, dilation_choices=choices, name=name)

  def head_layers(self, x, train: bool, dtype):
    return mobilenet_head(x, self.width_mult, self.num_classes, train, dtype)


@dataclasses.dataclass(frozen=True)
class CRMobileStageSpace(_MobileNetMacro, StageReallocation):
  """MobileNetV2 allocations tau (groups 2-6): tau_i in 1..max_blocks[i], MACs within 1 %."""

  name = "crnas_mobilenet_stage"
  baseline: tuple[int, ...] = MOBILENET_BASELINE
  max_blocks: tuple[int, ...] = (4, 5, 6, 5, 5)
  flops_tolerance: float = 0.01


@dataclasses.dataclass(frozen=True)
class CRMobileDilationSpace(_MobileNetMacro, DilationReallocation):
  """Dilation index of every MobileNetV2 block's depthwise conv, for groups 2-6's `allocation`."""

  name = "crnas_mobilenet_dilation"
  allocation: tuple[int, ...] = MOBILENET_BASELINE
  dilations: tuple[int, ...] = DILATIONS
