"""Costs and constraints of one-shot NAS paths (`jaxml.oneshot`): jittable FLOPs / params per
encoding from a space's counters, and a space whose `is_valid` enforces limits on them (SPOS's
FLOPs-constrained evolution, Guo et al., ECCV 2020, Sec. 3.4)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxml.errors import ConfigError
from jaxml.spaces.base import EXACT_UID_LIMIT, SearchSpace

# Spaces up to this size get dense per-encoding cost tables (NB201: 15,625).
DENSE_COST_LIMIT = 200_000


@dataclasses.dataclass(frozen=True, eq=False)
class PathCosts:
  """Jittable MACs and params of encodings [..., L] (float32; counters of `space`).

  'dense': `tables` float32 [2, size] indexed by `space.uid` (exact mixed-radix index).
  'additive': cost = base + sum_i delta[i, enc[i]] with `tables` float32 [2, L, max_bound + 1]
  (last column: base), valid when each position's cost does not depend on the others.
  """

  space: SearchSpace
  mode: str
  tables: np.ndarray

  @classmethod
  def build(cls, space: SearchSpace, mode: str = "auto") -> PathCosts:
    if mode == "auto":
      mode = "dense" if space.size <= min(DENSE_COST_LIMIT, EXACT_UID_LIMIT) else "additive"
    if mode == "dense":
      if space.size > min(DENSE_COST_LIMIT, EXACT_UID_LIMIT):
        raise ConfigError(f"dense path costs need a space of <= {DENSE_COST_LIMIT} encodings")
      encs = space.enumerate()
      tables = np.stack([space.flops(encs), space.params(encs)]).astype(np.float32)
      return cls(space, "dense", tables)
    if mode != "additive":
      raise ConfigError(f"PathCosts mode={mode!r}; valid: auto, dense, additive")
    bounds = space.bounds()
    length, widest = len(bounds), int(bounds.max())
    zero = np.zeros(length, np.int32)
    # probe[i, v]: the zero encoding with position i set to v (clipped to its bound).
    probe = np.zeros((length, widest, length), np.int32)
    for i, b in enumerate(bounds):
      probe[i, :, i] = np.minimum(np.arange(widest), b - 1)
    base = np.array([space.flops(zero), space.params(zero)], np.float64)
    costs = np.stack([space.flops(probe), space.params(probe)]).astype(np.float64)
    delta = costs - base[:, None, None]
    tables = np.concatenate([delta, np.broadcast_to(base[:, None, None], (2, length, 1))], 2)
    out = cls(space, "additive", tables.astype(np.float32))
    check = np.asarray(space.sample(jax.random.key(0), 8))
    want = np.stack([space.flops(check), space.params(check)]).astype(np.float64)
    got = np.stack([np.asarray(out.flops(check)), np.asarray(out.params(check))])
    if not np.allclose(got, want, rtol=1e-5):
      raise ConfigError(
        f"the {space.name} space's FLOPs/params are not additive over positions: use "
        "PathCosts mode='dense' (a space of at most "
        f"{DENSE_COST_LIMIT} encodings) or give the space its own cost tables"
      )
    return out

  def _cost(self, enc, which: int):
    enc = jnp.asarray(enc, jnp.int32)
    t = jnp.asarray(self.tables[which])
    if self.mode == "dense":
      return t[self.space.uid(enc)]
    pos = jnp.arange(enc.shape[-1])
    return t[0, -1] + jnp.sum(t[pos, enc], axis=-1)

  def flops(self, enc):
    """float32 [...]: MACs per example of encodings [..., L] (the space's `flops`)."""
    return self._cost(enc, 0)

  def params(self, enc):
    """float32 [...]: parameters of encodings [..., L] (the space's `params`)."""
    return self._cost(enc, 1)


@dataclasses.dataclass(frozen=True, eq=False)
class ConstrainedSpace(SearchSpace):
  """`base` with `is_valid` = FLOPs <= max_flops and params <= max_params (0 = no limit), and
  optionally `uid` of the canonical encoding (`canonical` int32 [size] index -> index of the
  class representative), so searches reject equivalent encodings as duplicates."""

  base: SearchSpace
  costs: PathCosts | None = None
  max_flops: float = 0.0
  max_params: float = 0.0
  canonical: np.ndarray | None = None

  def __post_init__(self):
    if (self.max_flops or self.max_params) and self.costs is None:
      raise ConfigError("a FLOPs/params limit needs the space's PathCosts")

  @property
  def name(self):  # type: ignore[override]
    return self.base.name

  def bounds(self):
    return self.base.bounds()

  def validate(self, enc):
    self.base.validate(enc)

  def describe_position(self, i):
    return self.base.describe_position(i)

  def sample(self, key, n):
    return self.base.sample(key, n)

  def mutate(self, key, enc, prob):
    return self.base.mutate(key, enc, prob)

  def mutate_one(self, key, enc):
    return self.base.mutate_one(key, enc)

  def crossover(self, key, a, b):
    return self.base.crossover(key, a, b)

  def enumerate(self):
    return self.base.enumerate()

  def uid(self, enc):
    uid = self.base.uid(enc)
    return uid if self.canonical is None else jnp.asarray(self.canonical, jnp.int32)[uid]

  def is_valid(self, enc):
    ok = self.base.is_valid(enc)
    if self.max_flops:
      ok = ok & (self.costs.flops(enc) <= self.max_flops)
    if self.max_params:
      ok = ok & (self.costs.params(enc) <= self.max_params)
    return ok

  def to_string(self, enc):
    return self.base.to_string(enc)

  def from_string(self, s):
    return self.base.from_string(s)

  def flops(self, enc, input_size=None, channels=None):
    return self.base.flops(enc, input_size, channels)

  def params(self, enc, channels=None, num_classes=None):
    return self.base.params(enc, channels, num_classes)

  def network(self, arch=None):
    return self.base.network(arch)
