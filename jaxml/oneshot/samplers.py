"""Path samplers of one-shot NAS (`jaxml.oneshot`): `sampler(key, n, data=None) -> int32[n, L]`,
jittable frozen dataclasses (a sampler is a field of the model the train step closes over).

`UniformSampler` is SPOS's Gamma (Guo et al., ECCV 2020, Eq. 4); `ClassSampler` /
`nb201_unique_sampler` sample uniformly over equivalence classes (Ning et al., NeurIPS 2021,
de-isomorphic sampling); `FlopsBinSampler` is the released SPOS code's sampler; `PoolSampler`
takes its leading positions from a pool passed as data (PC-NAS, Li et al., CVPR 2020);
`SplitSampler` pins one position to a per-copy op (few-shot NAS's sub-supernets, Zhao et al.,
ICML 2021).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

from jaxml.errors import ConfigError
from jaxml.spaces.base import SearchSpace, randint, uniform

if TYPE_CHECKING:
  from jaxml.oneshot.costs import PathCosts


@dataclasses.dataclass(frozen=True, eq=False)
class UniformSampler:
  """Gamma of SPOS: every position uniform and independent (`space.sample`)."""

  space: SearchSpace

  def __call__(self, key, n: int, data=None):
    del data
    return self.space.sample(key, n)


@dataclasses.dataclass(frozen=True, eq=False)
class ClassSampler:
  """Uniform over equivalence classes of encodings, then a member of the drawn class.

  `members` int32 [M, L] sorted by class, `starts` int32 [C + 1] each class's first row. `pick`
  'first' trains each class's representative (its first member) only; 'random' a uniform member.
  """

  members: np.ndarray
  starts: np.ndarray
  pick: str = "first"

  def __post_init__(self):
    if self.pick not in ("first", "random"):
      raise ConfigError(f"ClassSampler pick={self.pick!r}; valid: first, random")

  @property
  def num_classes(self) -> int:
    return int(len(self.starts) - 1)

  def __call__(self, key, n: int, data=None):
    del data
    u = uniform(key, (n, 2))
    starts = jnp.asarray(self.starts, jnp.int32)
    cls = jnp.minimum((u[:, 0] * self.num_classes).astype(jnp.int32), self.num_classes - 1)
    row = starts[cls]
    if self.pick == "random":
      size = starts[cls + 1] - row
      row = row + jnp.minimum((u[:, 1] * size).astype(jnp.int32), size - 1)
    return jnp.asarray(self.members, jnp.int32)[row]


def nb201_unique_sampler(table, pick: str = "first", skip_empty: bool = True):
  """`(ClassSampler, canonical)` over NB201's isomorphism classes (`table.iso_id`, 6,466 on the
  real table): de-isomorphic sampling (Ning et al., NeurIPS 2021, Sec. 5.2: P@top5% 46.7% vs
  21.3%). `skip_empty` drops the cells whose output is not reached (they compute zeros).
  `canonical` int32 [15625] maps an index to its class representative's index (the class's
  lowest index), for scoring and de-duplicating isomorphic candidates."""
  from jaxml.spaces import nb201_encoding as enc201

  encs = enc201.enumerate_all()
  iso = np.asarray(table.iso_id)
  keep = (
    np.array([enc201.computes_something(e) for e in encs])
    if skip_empty
    else np.ones(len(iso), bool)
  )
  rows = np.flatnonzero(keep)
  rows = rows[np.argsort(iso[rows], kind="stable")]  # by class, then by index
  first = np.concatenate([[True], iso[rows][1:] != iso[rows][:-1]])
  starts = np.concatenate([np.flatnonzero(first), [rows.size]]).astype(np.int32)
  canonical = np.arange(len(iso), dtype=np.int32)
  rep_of_class = {int(iso[r]): int(r) for r in rows[first]}
  for i in range(len(iso)):
    canonical[i] = rep_of_class.get(int(iso[i]), i)
  return ClassSampler(encs[rows].astype(np.int32), starts, pick), canonical


@dataclasses.dataclass(frozen=True, eq=False)
class FlopsBinSampler:
  """The released SPOS sampler (`get_uniform_sample_cand`, src/Supernet/train.py): a FLOPs bin
  [edges[b], edges[b+1]) is drawn uniformly, then up to `tries` uniform paths are drawn and the
  first inside the bin is kept; with none inside (timeout), the first uniform path."""

  space: SearchSpace
  costs: PathCosts
  edges: tuple[float, ...]
  tries: int = 500

  def __post_init__(self):
    e = np.asarray(self.edges, np.float64)
    if e.ndim != 1 or e.size < 2 or np.any(np.diff(e) <= 0):
      raise ConfigError(f"FLOPs bin edges must be >= 2 increasing numbers, got {self.edges}")
    if self.tries < 1:
      raise ConfigError(f"FlopsBinSampler tries must be >= 1, got {self.tries}")

  def __call__(self, key, n: int, data=None):
    del data
    k_bin, k_paths = jax.random.split(key)
    edges = jnp.asarray(self.edges, jnp.float32)
    b = randint(k_bin, (n,), len(self.edges) - 1)
    cands = self.space.sample(k_paths, n * self.tries).reshape(n, self.tries, -1)
    flops = self.costs.flops(cands)
    inside = (flops >= edges[b][:, None]) & (flops < edges[b + 1][:, None])
    first = jnp.where(inside.any(1), jnp.argmax(inside, 1), 0)
    return jnp.take_along_axis(cands, first[:, None, None], 1)[:, 0]


@dataclasses.dataclass(frozen=True, eq=False)
class PoolSampler:
  """The first `data['fixed']` positions from a uniformly drawn row of `data['pool']` int32
  [P, L] (rows >= `data['size']` unused), every later position uniform (`space.sample`).

  The pool travels as a per-copy model input (`hparams['model']['path_data']`), so a controller
  can shrink or extend it between trunks without recompiling (PC-NAS, Li et al., CVPR 2020).
  """

  space: SearchSpace

  def __call__(self, key, n: int, data=None):
    if data is None:
      raise ConfigError("PoolSampler needs path_data={'pool', 'size', 'fixed'} (a model input)")
    k_row, k_rest = jax.random.split(key)
    pool = jnp.asarray(data["pool"], jnp.int32)
    rows = pool[randint(k_row, (n,), jnp.maximum(jnp.asarray(data["size"], jnp.int32), 1))]
    fixed = jnp.arange(self.space.encoding_length) < data["fixed"]
    return jnp.where(fixed, rows, self.space.sample(k_rest, n))


@dataclasses.dataclass(frozen=True, eq=False)
class SplitSampler:
  """`sampler`'s paths with position `position` set to `data['op']`: the paths of one
  sub-supernet of a supernet split on that position (few-shot NAS, Zhao et al., ICML 2021, Sec.
  3.2: sub-supernet k holds only the paths whose split edge is op k). The op travels as a
  per-copy model input (`hparams['model']['path_data']`), so the K copies of one population are
  the K sub-supernets."""

  sampler: object
  position: int

  def __call__(self, key, n: int, data=None):
    if data is None or "op" not in data:
      raise ConfigError("SplitSampler needs path_data={'op': int} (a per-copy model input)")
    paths = self.sampler(key, n)
    return paths.at[:, self.position].set(jnp.asarray(data["op"], paths.dtype))
