"""The partial model pool of PC-NAS (Li et al., "Improving One-shot NAS by Suppressing the
Posterior Fading", CVPR 2020, arXiv 1910.02543, Fig. 1).

Weight sharing fades the shared posterior away from each architecture's own; PC-NAS shrinks the
space progressively so fewer architectures share the weights. A *partial model* fixes the
choices of the first i layers; the pool holds the P best of them:

    pool <- {the empty prefix}                                      (i = 0: the whole space)
    for i = 0 .. L-1:
      train the supernet on paths whose first i layers come from a pool member   (sample_paths)
      candidates <- every member x every choice of layer i          (extend: P x N_i)
      potential(c) <- mean val accuracy of uniformly sampled completions of c,
                      completions that violate the latency/FLOPs limit left out   (potential)
      pool <- the top-P candidates by potential                     (keep_top)
    the pool now holds P whole architectures, ranked by potential

A "layer" is one position of a space's encoding, in encoding order (NB201: the 6 edges in
`nb201_encoding.EDGES` order; a ShuffleNet space: its choice blocks). The paper's pool size,
number of completions and stage lengths are not published (neither in the paper nor in code), so
they are parameters here; the method (`jaxml.methods.pcnas`) documents its choices.

Everything is pure and jittable with fixed shapes: a pool of capacity P has P rows, `live` marks
the members (the first pool has one), and `fixed` (traced) counts the fixed layers, so one
compiled sampler serves every stage. Constraints are the space's `is_valid` (e.g. a FLOPs limit).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxml.errors import ConfigError
from jaxml.spaces.base import SearchSpace, concrete_or_none, randint


@struct.dataclass
class Pool:
  """Partial models: the first `fixed` positions of each live row are fixed choices.

  Attributes:
    prefixes: int32 [R, L]; positions >= fixed are 0 (meaningless).
    live: bool [R], which rows are members (dead rows are padding of the fixed shape).
    fixed: int32 [], the number of fixed layers i (0: the whole space; L: whole architectures).
    potential: float32 [R], the potential each member was kept with (-inf for dead rows, nan
      before any estimate).
  """

  prefixes: jax.Array
  live: jax.Array
  fixed: jax.Array
  potential: jax.Array


def _prefix_mask(fixed, length: int) -> jax.Array:
  return jnp.arange(length) < fixed


def _first_valid(cands: jax.Array, valid: jax.Array, n: int) -> jax.Array:
  """The first n valid rows of `cands` [T, L] (valid ones first, order kept; invalid ones only
  when fewer than n are valid, so a shape is never short)."""
  t = cands.shape[0]
  order = jnp.argsort(jnp.where(valid, 0, t) + jnp.arange(t))
  return cands[order[:n]]


@dataclasses.dataclass(frozen=True)
class PartialModelPool:
  """The pool operations over `space` with capacity `pool_size` (P).

  `max_tries` > 1 makes `sample_paths` and `complete` draw that many candidates per wanted path
  and keep valid ones first (rejection sampling, as SPOS's FLOPs-constrained sampler); 1 draws
  plainly uniform paths.
  """

  space: SearchSpace
  pool_size: int
  max_tries: int = 1

  def __post_init__(self):
    if not isinstance(self.pool_size, int) or self.pool_size < 1:
      raise ConfigError(f"PC-NAS pool_size must be a positive integer, got {self.pool_size!r}")
    if not isinstance(self.max_tries, int) or self.max_tries < 1:
      raise ConfigError(f"PC-NAS max_tries must be a positive integer, got {self.max_tries!r}")

  @property
  def num_layers(self) -> int:
    """L: stages until the pool holds whole architectures."""
    return self.space.encoding_length

  @property
  def max_choices(self) -> int:
    """The most choices at any layer (the candidates per member that `extend` lays out)."""
    return int(np.max(self.space.bounds()))

  def init(self) -> Pool:
    """The first pool: one member, the empty prefix (the whole space)."""
    p, length = self.pool_size, self.num_layers
    return Pool(
      prefixes=jnp.zeros((p, length), jnp.int32),
      live=jnp.arange(p) == 0,
      fixed=jnp.int32(0),
      potential=jnp.where(jnp.arange(p) == 0, jnp.nan, -jnp.inf).astype(jnp.float32),
    )

  def complete(
    self, key: jax.Array, prefixes: jax.Array, fixed, n: int, paired: bool = False
  ) -> jax.Array:
    """int32 [R, n, L]: n uniform completions of every prefix (its first `fixed` layers kept).

    `paired`: every prefix gets the same n draws of the free layers (common random numbers:
    the candidates of one stage are compared on the same completions, so the noise of the draws
    cancels in their differences). With `max_tries` > 1 valid completions (`space.is_valid`)
    come first.
    """
    r, length = prefixes.shape
    t = n * self.max_tries
    if paired:
      draws = jnp.broadcast_to(self.space.sample(key, t)[None], (r, t, length))
    else:
      draws = self.space.sample(key, r * t).reshape(r, t, length)
    paths = jnp.where(_prefix_mask(fixed, length), prefixes[:, None, :], draws)
    if self.max_tries > 1:
      paths = jax.vmap(lambda c: _first_valid(c, self.space.is_valid(c), n))(paths)
    return paths.astype(jnp.int32)

  def sample_paths(self, key: jax.Array, pool: Pool, n: int) -> jax.Array:
    """int32 [n, L]: training paths of stage `pool.fixed` (PC-NAS): each takes its first
    `fixed` layers from a live member drawn uniformly, the rest uniformly from the space."""
    k_member, k_rest = jax.random.split(key)
    num_live = jnp.sum(pool.live)
    # Live members are packed first by `init` / `keep_top`, so the j-th live one is row j.
    member = randint(k_member, (n,), num_live)
    return self.complete(k_rest, pool.prefixes[member], pool.fixed, 1)[:, 0]

  def extend(self, pool: Pool) -> Pool:
    """Every member x every choice of layer `fixed` (PC-NAS Fig. 1: P x N candidates).

    Returns a `Pool` of R * max_choices rows (row r * B + c: member r with choice c) whose
    `fixed` is one more; rows of dead members, or past that layer's number of choices, are dead.
    Calling it on a pool of whole architectures is an error (host check when `fixed` is
    concrete).
    """
    fixed = pool.fixed
    concrete = concrete_or_none(fixed)
    if concrete is not None and int(concrete) >= self.num_layers:
      raise ConfigError(
        f"the PC-NAS pool already holds whole architectures ({int(concrete)} layers)"
      )
    r, length = pool.prefixes.shape
    b = self.max_choices
    choice = jnp.tile(jnp.arange(b, dtype=jnp.int32), r)
    prefixes = jnp.repeat(pool.prefixes, b, axis=0)
    prefixes = jnp.where(jnp.arange(length) == fixed, choice[:, None], prefixes)
    bound = jnp.asarray(self.space.bounds(), jnp.int32)[jnp.minimum(fixed, length - 1)]
    live = jnp.repeat(pool.live, b) & (choice < bound)
    return Pool(
      prefixes=prefixes,
      live=live,
      fixed=fixed + 1,
      potential=jnp.where(live, jnp.nan, -jnp.inf).astype(jnp.float32),
    )

  def keep_top(self, candidates: Pool, potential: jax.Array) -> Pool:
    """The new pool: the `pool_size` live candidates of highest potential, best first.

    Ties go to the lower row (a stable sort), so the result is deterministic. Candidates whose
    potential is -inf (dead, or without one valid completion) are never kept; with fewer than P
    usable candidates the rest of the rows are dead.
    """
    p = self.pool_size
    score = jnp.where(candidates.live, potential, -jnp.inf)
    score = jnp.where(jnp.isnan(score), -jnp.inf, score)
    order = jnp.argsort(-score, stable=True)
    r = candidates.prefixes.shape[0]
    if r < p:  # pad with dead rows so the pool keeps its capacity
      order = jnp.concatenate([order, jnp.full((p - r,), r)])
    pad = lambda x, v: jnp.concatenate([x, jnp.full((1, *x.shape[1:]), v, x.dtype)])
    top = order[:p]
    kept_score = pad(score, -jnp.inf)[top]
    live = kept_score > -jnp.inf
    prefixes = jnp.where(live[:, None], pad(candidates.prefixes, 0)[top], 0)
    return Pool(prefixes=prefixes, live=live, fixed=candidates.fixed, potential=kept_score)


def potential(accuracy: jax.Array, valid: jax.Array) -> jax.Array:
  """float32 [C]: a partial model's potential = the mean accuracy of its sampled completions
  [C, M] that meet the constraint (`valid` [C, M]); -inf when none does (PC-NAS: paths
  over the latency limit are excluded)."""
  valid = jnp.asarray(valid, bool)
  count = jnp.sum(valid, axis=-1)
  total = jnp.sum(jnp.where(valid, accuracy, 0.0), axis=-1)
  return jnp.where(count > 0, total / jnp.maximum(count, 1), -jnp.inf).astype(jnp.float32)
