"""The common interface of the architecture search spaces ("search spaces as data").

An architecture is a fixed-length integer vector (its *encoding*). In the spaces of this package
every position has its own fixed range `0 <= enc[i] < bounds[i]`, so validity is positional, and
uniform sampling, mutation and crossover are elementwise array math: they are written once here
with `jax.random`, are jittable, and work on a single encoding `[L]` or a batch `[..., L]`
(and under `jax.vmap`). A space may override them (NAS-Bench-201 delegates to
`jaxml.spaces.nb201_encoding`).

The searches of `jaxml.search` use only this part of a space: `bounds`, `sample`, `mutate`,
`mutate_one`, `crossover`, `uid` (an integer id per encoding, to reject duplicates) and
`is_valid` (constraints such as a FLOPs limit; none by default).

Each space also gives:
- `flops` / `params` of the network built from an encoding, computed analytically;
- `to_string` / `from_string` in the paper's own notation (NB201 arch string, DARTS genotype);
- `network(arch=None)`: one Flax module for the whole space that takes the encoding as an array
  input, `module.apply(variables, x, encoding, train=...)`, so K architectures are one batched
  pytree; `network(arch=enc)` builds the fixed network of one architecture (only the chosen ops,
  called as `module.apply(variables, x, train=...)`) whose variables are a sub-tree of the
  array build's (same names), so weights move between the two builds by tree selection
  (Flax's apply also accepts the whole array-build tree). The array build computes every
  candidate op and selects the chosen one with `select`: the weights of unchosen ops get no
  gradient, but their BN running statistics still update in training, so only the chosen
  ops' variables are meaningful for an architecture. Its cost is the supernet's, not the
  architecture's (and its compile time grows with the number of candidate ops).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxml.errors import ConfigError

# Spaces with more encodings than this refuse to enumerate.
ENUMERATE_LIMIT = 10**6
# Spaces with fewer encodings than this get an exact `uid` (their index); larger ones a hash.
EXACT_UID_LIMIT = 2**31
# 32-bit FNV-1a (Fowler, Noll, Vo): offset basis and prime.
_FNV_OFFSET, _FNV_PRIME = 2166136261, 16777619


def uniform(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """Uniform float32 in [0, 1) of `shape`, drawn as one flat vector and reshaped.

  With JAX's (partitionable) threefry a 1-D draw compiles several times faster than an N-D one,
  and these draws sit inside every search step; the numbers are equally random.
  """
  return jax.random.uniform(key, (math.prod(shape),)).reshape(shape)


def randint(key: jax.Array, shape: tuple[int, ...], n) -> jax.Array:
  """Uniform int32 in [0, n) as floor(n * u), u from `uniform` (one cheap-to-compile draw).

  `n` may be an array broadcasting against `shape` (per-position bounds). u has 2**23 equally
  likely values, so each integer has probability 1/n up to 2**-23.
  """
  return jnp.minimum((uniform(key, shape) * n).astype(jnp.int32), n - 1)


def _other_value_offset(v: jax.Array, bounds: jax.Array) -> jax.Array:
  """An offset in 1..bound-1 from v uniform in [0, 1): added modulo the bound, it moves a value
  to each *other* value with equal probability."""
  return 1 + jnp.minimum((v * (bounds - 1)).astype(jnp.int32), jnp.maximum(bounds - 2, 0))


def as_int_array(enc, what: str = "encoding") -> np.ndarray:
  """A host numpy int64 copy of `enc` (array, list or tuple), or ConfigError."""
  try:
    arr = np.asarray(enc)
  except jax.errors.TracerArrayConversionError as e:
    raise ConfigError(
      f"cannot validate a traced {what} (inside jit/vmap); validate it before tracing"
    ) from e
  if arr.dtype == object or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
    raise ConfigError(f"{what} must hold integers, got dtype {arr.dtype} ({enc!r:.80})")
  return arr.astype(np.int64)


def concrete_or_none(enc) -> np.ndarray | None:
  """`enc` as a numpy array if it is concrete (not a tracer), else None."""
  try:
    return np.asarray(enc)
  except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
    return None


class SearchSpace(abc.ABC):
  """Base class of a search space. Subclasses are frozen dataclasses holding the macro config.

  Subclasses implement: `bounds`, `to_string`, `from_string`, `flops`, `params`, `network`, and
  may refine `describe_position` (used in error messages) and `crossover_unit`.
  """

  name: ClassVar[str] = "space"
  # Uniform crossover swaps genes of this many consecutive positions (2 = (input, op) pairs).
  crossover_unit: ClassVar[int] = 1

  # --- shape of the encoding -----------------------------------------------------------------

  @abc.abstractmethod
  def bounds(self) -> np.ndarray:
    """int32[L]: exclusive upper bound of each position (the number of choices there)."""

  @property
  def encoding_length(self) -> int:
    """L, the length of an encoding."""
    return int(self.bounds().shape[0])

  @property
  def size(self) -> int:
    """Number of distinct encodings (a Python int; may be astronomically large)."""
    return math.prod(int(b) for b in self.bounds())

  def describe_position(self, i: int) -> str:
    """Human-readable meaning of position i (for error messages)."""
    return f"position {i}"

  # --- validity ------------------------------------------------------------------------------

  def validate(self, enc) -> None:
    """Raise ConfigError unless `enc` ([L] or [..., L] integers) holds valid encodings."""
    arr = as_int_array(enc, f"{self.name} encoding")
    length = self.encoding_length
    if arr.ndim == 0 or arr.shape[-1] != length:
      raise ConfigError(
        f"{self.name} encoding must have length {length} (last axis), got shape {arr.shape}"
      )
    bounds = self.bounds()
    bad = (arr < 0) | (arr >= bounds)
    if bad.any():
      where = tuple(int(i) for i in np.argwhere(bad)[0])
      pos = where[-1]
      row = f" in row {where[:-1]}" if arr.ndim > 1 else ""
      raise ConfigError(
        f"invalid {self.name} encoding{row}: {self.describe_position(pos)} (position {pos}) is "
        f"{arr[where]}, must be in 0..{bounds[pos] - 1}"
      )

  def as_arch(self, enc) -> tuple[int, ...]:
    """Validate one encoding and return it as a hashable tuple (for `network(arch=...)`)."""
    arr = as_int_array(enc, f"{self.name} encoding")
    if arr.ndim != 1:
      raise ConfigError(f"expected one {self.name} encoding of shape [L], got {arr.shape}")
    self.validate(arr)
    return tuple(int(v) for v in arr)

  # --- sampling and variation (jittable, [..., L]) -------------------------------------------

  # Every draw here is one flat `uniform` call: N-D `jax.random.randint` / `bernoulli` /
  # `categorical` compile several times slower, and these sit inside every search step (an
  # REA step over DARTS compiled in 7 s with them).

  def sample(self, key: jax.Array, n: int) -> jax.Array:
    """int32[n, L]: n encodings drawn uniformly (independently per position)."""
    return randint(key, (n, self.encoding_length), jnp.asarray(self.bounds(), jnp.int32))

  def mutate(self, key: jax.Array, enc: jax.Array, prob: float | jax.Array) -> jax.Array:
    """Each position independently, with probability `prob`, takes a different random value."""
    enc = jnp.asarray(enc, jnp.int32)
    bounds = jnp.asarray(self.bounds(), jnp.int32)
    # One uniform u per position decides whether it changes (u < prob) and, rescaled to [0, 1)
    # as u / prob, which other value it takes.
    u = uniform(key, enc.shape)
    fire = (u < prob) & (bounds > 1)
    v = jnp.where(fire, u / jnp.where(fire, prob, 1.0), 0.0)
    return jnp.where(fire, (enc + _other_value_offset(v, bounds)) % bounds, enc)

  def mutate_one(self, key: jax.Array, enc: jax.Array) -> jax.Array:
    """Exactly one position (uniform among those with a choice) takes a different value.

    The regularized-evolution mutation (Real et al., AAAI 2019); every child differs.
    """
    enc = jnp.asarray(enc, jnp.int32)
    bounds = jnp.asarray(self.bounds(), jnp.int32)
    movable = jnp.asarray(np.flatnonzero(self.bounds() > 1), jnp.int32)
    u = uniform(key, enc.shape[:-1] + (2,))  # [..., 0]: which position, [..., 1]: which value
    which = jnp.minimum((u[..., 0] * movable.shape[0]).astype(jnp.int32), movable.shape[0] - 1)
    hit = jax.nn.one_hot(movable[which], enc.shape[-1], dtype=jnp.bool_)
    return jnp.where(hit, (enc + _other_value_offset(u[..., 1:], bounds)) % bounds, enc)

  def crossover(self, key: jax.Array, a: jax.Array, b: jax.Array) -> jax.Array:
    """Uniform crossover: each gene (`crossover_unit` positions) comes from a or b with p=1/2."""
    a, b = jnp.broadcast_arrays(jnp.asarray(a, jnp.int32), jnp.asarray(b, jnp.int32))
    unit = self.crossover_unit
    genes = uniform(key, a.shape[:-1] + (a.shape[-1] // unit,)) < 0.5
    return jnp.where(jnp.repeat(genes, unit, axis=-1), a, b)

  # --- identity and constraints (jittable, [..., L]) -----------------------------------------

  def uid(self, enc: jax.Array) -> jax.Array:
    """int32[...]: a non-negative id per encoding, used by searches to reject duplicates.

    Exact when the space has fewer than 2**31 members: the encoding's row in `enumerate`
    (mixed radix, position 0 most significant; NB201's base-5 index). Larger spaces (DARTS,
    EcoNAS) get a 31-bit FNV-1a hash of the positions: two encodings share an id with
    probability about 2**-31, and a collision only makes a search reject a new candidate as
    if it had been seen.
    """
    enc = jnp.asarray(enc, jnp.int32)
    if self.size < EXACT_UID_LIMIT:
      bounds = self.bounds().astype(np.int64)
      place = np.concatenate([np.cumprod(bounds[::-1])[::-1][1:], [1]]).astype(np.int32)
      return jnp.sum(enc * jnp.asarray(place), axis=-1)
    h = jnp.full(enc.shape[:-1], _FNV_OFFSET, jnp.uint32)
    for i in range(self.encoding_length):
      h = (h ^ enc[..., i].astype(jnp.uint32)) * jnp.uint32(_FNV_PRIME)
    return (h >> 1).astype(jnp.int32)

  def is_valid(self, enc: jax.Array) -> jax.Array:
    """bool[...]: whether encodings meet the space's constraints beyond the position ranges.

    None here (all True); a constrained space (e.g. the FLOPs limit of SPOS's search) overrides
    this with a jittable test. SPOS evolution (`jaxml.search.spos_evolution`) rejects invalid
    candidates; random search, REA and REINFORCE assume an unconstrained space.
    """
    return jnp.ones(jnp.shape(enc)[:-1], bool)

  def enumerate(self) -> np.ndarray:
    """int32[size, L]: every encoding, in mixed-radix order (position 0 most significant)."""
    size = self.size
    if size > ENUMERATE_LIMIT:
      raise ConfigError(
        f"the {self.name} space has {size:.3e} architectures, too many to enumerate "
        f"(limit {ENUMERATE_LIMIT}); use sample() instead"
      )
    idx = np.unravel_index(np.arange(size), tuple(int(b) for b in self.bounds()))
    return np.stack(idx, axis=-1).astype(np.int32)

  # --- notation --------------------------------------------------------------------------------

  @abc.abstractmethod
  def to_string(self, enc) -> str:
    """The paper's notation for one encoding."""

  @abc.abstractmethod
  def from_string(self, s: str) -> np.ndarray:
    """int32[L] from the paper's notation; ConfigError if it is not a member of the space."""

  # --- cost of the built network ---------------------------------------------------------------

  @abc.abstractmethod
  def flops(self, enc, input_size: int | None = None, channels: int | None = None):
    """MACs per example of the network (see `jaxml.spaces.ops`); int, or int64[...] for [..., L].

    `input_size` / `channels` override the space's resolution / initial width (proxies).
    """

  @abc.abstractmethod
  def params(self, enc, channels: int | None = None, num_classes: int | None = None):
    """Trainable parameters of the fixed network; int, or int64[...] for a batch [..., L]."""

  def _per_encoding(self, enc, fn: Callable[[tuple[int, ...]], int]):
    """Apply fn(arch tuple) -> int to one encoding or every row of a batch."""
    arr = as_int_array(enc, f"{self.name} encoding")
    self.validate(arr)
    if arr.ndim == 1:
      return int(fn(tuple(int(v) for v in arr)))
    flat = arr.reshape(-1, arr.shape[-1])
    out = np.array([fn(tuple(int(v) for v in row)) for row in flat], dtype=np.int64)
    return out.reshape(arr.shape[:-1])

  # --- Flax network ------------------------------------------------------------------------------

  @abc.abstractmethod
  def network(self, arch=None) -> nn.Module:
    """The space's network: array build if arch is None, else the fixed build of `arch`."""


def check_call(space_name: str, arch, encoding, bounds: np.ndarray):
  """Shared argument check of the networks' `__call__` (array build vs fixed build).

  Returns the encoding as an int array (array build) or None (fixed build). A concrete encoding
  is range-checked here; a traced one (under jit / vmap) cannot be, so validate encodings with
  `space.validate` before tracing: out-of-range op indices select nothing (zeros) there.
  """
  length = int(bounds.shape[0])
  if arch is not None:
    if encoding is not None:
      raise ConfigError(
        f"this {space_name} network is the fixed build of one architecture; call it without "
        "an encoding (or build it with arch=None to pass encodings as arrays)"
      )
    return None
  if encoding is None:
    raise ConfigError(
      f"the {space_name} array-build network needs an encoding: module.apply(v, x, encoding)"
    )
  encoding = jnp.asarray(encoding)
  if encoding.shape != (length,) or not jnp.issubdtype(encoding.dtype, jnp.integer):
    raise ConfigError(
      f"{space_name} network takes one integer encoding of shape ({length},) per call (vmap for "
      f"a batch), got {encoding.dtype}{tuple(encoding.shape)}"
    )
  concrete = concrete_or_none(encoding)
  if concrete is not None and ((concrete < 0) | (concrete >= bounds)).any():
    raise ConfigError(
      f"invalid {space_name} encoding {concrete.tolist()}: values must be below {bounds.tolist()}"
    )
  return encoding


def check_weights(space_name: str, arch, encoding, weights, shape: tuple[int, int]):
  """Argument check of the networks' continuous-relaxation call (`weights=`, DARTS).

  `weights` float[E, O] are per-edge op weights (e.g. softmax(alpha)); they replace the integer
  encoding, so the network must be an array build called without one. Returns them as an array.
  """
  if arch is not None or encoding is not None:
    raise ConfigError(
      f"the {space_name} network takes op weights only as an array build (arch=None) called "
      "without an encoding: module.apply(v, x, weights=w)"
    )
  weights = jnp.asarray(weights)
  if weights.shape != tuple(shape) or not jnp.issubdtype(weights.dtype, jnp.floating):
    raise ConfigError(
      f"{space_name} network takes float op weights of shape {tuple(shape)} (edges x ops), got "
      f"{weights.dtype}{tuple(weights.shape)}"
    )
  return weights


def mix(candidates, weights: jax.Array, like: jax.Array | None = None) -> jax.Array:
  """The DARTS mixed op sum_o weights[o] * candidates[o] (Liu et al., ICLR 2019, eq. 1 with
  softmax weights); `None` candidates (the `none` op) add nothing. `like` gives the shape of the
  zeros when every candidate is None. Every candidate is computed (a weighted sum needs them all).
  """
  out = None
  for i, c in enumerate(candidates):
    if c is not None:
      term = weights[i].astype(c.dtype) * c
      out = term if out is None else out + term
  return jnp.zeros_like(like) if out is None else out


def select(candidates, index, like: jax.Array | None = None) -> jax.Array:
  """`candidates[index]` for a traced integer index; `None` candidates stand for zeros.

  A chain of `jnp.where` rather than stack+gather or a one-hot sum: no gather under vmap, and
  unselected candidates can neither leak NaN/inf (0 * inf) nor receive gradient.
  `like` gives the shape of the zeros when every candidate is None.
  """
  present = [(i, c) for i, c in enumerate(candidates) if c is not None]
  if not present:
    return jnp.zeros_like(like)
  out = jnp.zeros_like(present[0][1])
  for i, c in present:
    out = jnp.where(index == i, c, out)
  return out
