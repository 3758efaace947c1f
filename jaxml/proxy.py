"""EcoNAS reduced-setting proxies on the NAS-Bench-201 skeleton (Zhou et al., "EcoNAS: Finding
Proxies for Economical Neural Architecture Search", CVPR 2020, Sec. 3).

A proxy trains a network in a cheaper setting than the one it will finally be trained in, to rank
candidate architectures. EcoNAS studies four reduction factors and names a proxy by them,
`c{i}r{j}s{k}e{E}`: i, j, k index ladders of channels, input resolution and training-sample
ratio (0 = no reduction), E is the number of epochs. On CIFAR-10 its ladders are channels
36/24/18/12/8, resolution 32/24/16/12/8, samples 1, 1/2, 1/4, 1/8; the official code's reliable
proxy `c4r4s0e60` trains with 36/4 = 9 channels on 8x8 images, all samples, 60 epochs (its
`search/train.py` defaults), i.e. index 4 reduces by 4.

The NAS-Bench-201 equivalent (Dong & Yang, ICLR 2020): the full setting is C = 16 base channels,
N = 5 cells per stage, 32 px, all 50,000 train images, 200 epochs (the table's ground truth). The
ladders here keep the resolution ladder's ratios 1, 4/3, 2, 8/3, 4 for both channels and
resolution, so index 4 is the official code's /4 (C 4, 8 px, the "r8 c4" EcoNAS proxy that
Abdelfattah et al., ICLR 2021, re-implemented on NB201):

    index         0    1    2    3    4
    channels C   16   12    8    6    4
    resolution   32   24   16   12    8
    sample s      1  1/2  1/4  1/8

The number of cells per stage N is a fifth factor (EcoNAS reduces it only in its search space's
depth); the name carries it as a suffix `n{N}` when it is not the full 5, e.g. `c4r4s0e60n1`.

Cost of a proxy (`cost_fraction`): training FLOPs x training images, as a fraction of the full
setting's, FLOPs from the space's analytical MAC counter (`NB201Space.flops`, which tests check
against the traced `jaxml.spaces.counting` count) averaged over the architectures studied:

    cost = mean_a MACs(a; C, N, r) * images(s) * e  /  (mean_a MACs(a; 16, 5, 32) * 50,000 * 200)

(training is ~3x the forward MACs per image in both settings, so the 3 cancels).
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from jaxml.errors import ConfigError
from jaxml.spaces import NB201Space

CHANNELS = (16, 12, 8, 6, 4)
RESOLUTIONS = (32, 24, 16, 12, 8)
SAMPLE_RATIOS = (1.0, 0.5, 0.25, 0.125)
FULL_CELLS = 5
FULL_EPOCHS = 200
FULL_TRAIN_IMAGES = 50_000  # NB201's CIFAR-10 ground truth trains on the whole train split

_NAME = re.compile(r"c(\d+)r(\d+)s(\d+)e(\d+(?:\.\d+)?)(?:n(\d+))?")


@dataclasses.dataclass(frozen=True)
class Proxy:
  """One reduced setting: ladder indices of channels / resolution / samples, epochs, cells."""

  c: int = 0
  r: int = 0
  s: int = 0
  epochs: float = FULL_EPOCHS
  cells_per_stage: int = FULL_CELLS

  def __post_init__(self):
    for field, ladder in (("c", CHANNELS), ("r", RESOLUTIONS), ("s", SAMPLE_RATIOS)):
      v = getattr(self, field)
      if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < len(ladder):
        raise ConfigError(
          f"proxy {field}{v}: the {field} index must be an integer in [0, {len(ladder) - 1}] "
          f"(ladder {'/'.join(f'{x:g}' for x in ladder)})"
        )
    if isinstance(self.epochs, bool) or not 0 < self.epochs <= FULL_EPOCHS:
      raise ConfigError(
        f"proxy epochs must be in (0, {FULL_EPOCHS}] (a reduction of the full setting's "
        f"{FULL_EPOCHS}), got {self.epochs!r}"
      )
    n = self.cells_per_stage
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= FULL_CELLS:
      raise ConfigError(
        f"proxy cells per stage N must be an integer in [1, {FULL_CELLS}], got {n!r}"
      )

  @property
  def channels(self) -> int:
    return CHANNELS[self.c]

  @property
  def resolution(self) -> int:
    return RESOLUTIONS[self.r]

  @property
  def sample_ratio(self) -> float:
    return SAMPLE_RATIOS[self.s]

  @property
  def name(self) -> str:
    n = "" if self.cells_per_stage == FULL_CELLS else f"n{self.cells_per_stage}"
    return f"c{self.c}r{self.r}s{self.s}e{self.epochs:g}{n}"

  @classmethod
  def from_name(cls, name: str) -> Proxy:
    """'c4r4s0e60n1' -> Proxy(4, 4, 0, 60, 1); `ConfigError` for anything else."""
    m = _NAME.fullmatch(name.strip()) if isinstance(name, str) else None
    if m is None:
      raise ConfigError(
        f"bad proxy name {name!r}: expected c<i>r<j>s<k>e<epochs>[n<cells>], e.g. 'c4r4s0e60' "
        "or 'c2r2s1e10n1' (indices into the channel / resolution / sample ladders of jaxml.proxy)"
      )
    c, r, s, e, n = m.groups()
    epochs = float(e)
    return cls(int(c), int(r), int(s), int(epochs) if epochs.is_integer() else epochs,
               FULL_CELLS if n is None else int(n))  # fmt: skip

  def space(self, num_classes: int = 10) -> NB201Space:
    """The NB201 space at this proxy's macro config (C, N, resolution)."""
    return NB201Space(self.channels, self.cells_per_stage, num_classes, self.resolution)

  def check_trainable(self, train_images: int, batch_size: int) -> int:
    """Training steps of this proxy on `train_images` (before the sample ratio) at `batch_size`.

    Raises `ConfigError` for an impossible combination: a sample ratio that leaves fewer images
    than one batch, or so few epochs that not one step is taken.
    """
    n = subset_size(train_images, self.sample_ratio)
    if n < batch_size:
      raise ConfigError(
        f"proxy {self.name}: sample ratio {self.sample_ratio:g} of {train_images} train images "
        f"leaves {n}, fewer than one batch of {batch_size}; use a smaller s index or batch_size"
      )
    steps = int(round(self.epochs * (n // batch_size)))
    if steps < 1:
      raise ConfigError(
        f"proxy {self.name}: {self.epochs:g} epochs of {n // batch_size} steps round to no "
        "training step; use more epochs"
      )
    return steps


FULL = Proxy()


def subset_size(train_images: int, ratio: float) -> int:
  """Images kept by `jaxml.data.stratified_subset` at `ratio` for balanced classes (approx.)."""
  return train_images if ratio == 1.0 else int(np.floor(ratio * train_images + 0.5))


def parse(names) -> tuple[Proxy, ...]:
  """A comma-separated string or a sequence of proxy names -> distinct `Proxy`s, in order."""
  if isinstance(names, str):
    names = [p for p in names.split(",") if p.strip()]
  proxies = tuple(Proxy.from_name(n) for n in names)
  if not proxies:
    raise ConfigError("the proxy grid is empty: name at least one proxy, e.g. 'c4r4s0e60'")
  seen = set()
  for p in proxies:
    if p.name in seen:
      raise ConfigError(f"proxy {p.name} appears twice in the grid")
    seen.add(p.name)
  return proxies


def train_macs(proxy: Proxy, encodings, num_classes: int = 10) -> float:
  """Mean forward MACs per image of the architectures `encodings` [n, 6] at the proxy's size."""
  space = proxy.space(num_classes)
  return float(np.mean([space.flops(e) for e in np.asarray(encodings)]))


def cost_fraction(proxy: Proxy, encodings, train_images: int, num_classes: int = 10) -> float:
  """Training FLOPs x images of `proxy` as a fraction of the full setting's (module docstring).

  `train_images` is the proxy's train split before its sample ratio (45,000 here: CIFAR-10's
  50,000 less the 5,000 held out for validation).
  """
  images = subset_size(train_images, proxy.sample_ratio) * proxy.epochs
  full = train_macs(FULL, encodings, num_classes) * FULL_TRAIN_IMAGES * FULL_EPOCHS
  return train_macs(proxy, encodings, num_classes) * images / full
