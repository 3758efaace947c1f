"""Evolutionary architecture search of Single Path One-Shot NAS (Guo et al., ECCV 2020, Alg. 1),
ask/tell: one ask is one generation of P candidates.

    P_0 <- P random architectures; TopK <- {}
    for generation t = 1, 2, ...:
      evaluate P_{t-1}; TopK <- best k of TopK ∪ P_{t-1}                  (tell)
      P_crossover <- n = P/2 uniform crossovers of two parents drawn from TopK      (ask)
      P_mutation  <- m = P/2 mutations of a parent from TopK, each gene changed with prob 0.1
      P_t <- P_crossover ∪ P_mutation
    return the best of TopK

Candidates that violate the space's constraints (`SearchSpace.is_valid`) or duplicate an
architecture already evaluated (or one earlier in the same generation) are rejected, as in the
official code (megvii-model/SinglePathOneShot, `vis_dict`), which retries up to 10x the wanted
number and then fills the generation with random architectures. With fixed shapes this becomes:
draw `max_tries * n` crossover, `max_tries * m` mutation and `max_tries * P` random candidates at
once, drop the rejected ones, keep the first n crossovers, the first m mutations and fill the
rest with random ones. Only if fewer than P new candidates exist at all (a nearly exhausted,
tiny space) are rejected ones asked again (valid repeats first), so a query budget is never left
unused. One deliberate difference: the official mutation redraws a fired gene uniformly (it may
keep its value); here a fired gene always changes (`SearchSpace.mutate`).

"Already evaluated" means: among the last `history_size` told architectures (a ring buffer of
their `SearchSpace.uid`s; give it the whole budget, e.g. 20 generations x 50, the paper's run).
Duplicates are found by sorting it, O((P + history) log history) per generation. The search
returns the best architecture it queried (= best of TopK).
"""

import dataclasses

import jax
import jax.numpy as jnp
from flax import struct

from jaxml.errors import ConfigError
from jaxml.spaces.base import SearchSpace, randint


@struct.dataclass
class State:
  """TopK, the ids of evaluated architectures, and the generation count.

  Attributes:
    top_encodings: int32 [k, L] the best k architectures told so far (zeros before any).
    top_fitness: float32 [k], descending (-inf for empty places).
    seen: int32 [history_size] uids of told architectures, in telling order; -1 = free.
    generation: int32, the number of generations told.
  """

  top_encodings: jax.Array
  top_fitness: jax.Array
  seen: jax.Array
  generation: jax.Array


def _first_occurrence(keys: jax.Array) -> jax.Array:
  """bool [C]: True where keys[i] does not occur at an earlier position."""
  order = jnp.argsort(keys, stable=True)
  sorted_keys = keys[order]
  repeat = jnp.concatenate([jnp.zeros(1, bool), sorted_keys[1:] == sorted_keys[:-1]])
  return jnp.zeros_like(repeat).at[order].set(~repeat)


def _is_member(keys: jax.Array, sorted_pool: jax.Array) -> jax.Array:
  """bool [C]: keys[i] occurs in the sorted 1-D array `sorted_pool`."""
  pos = jnp.clip(jnp.searchsorted(sorted_pool, keys), 0, sorted_pool.shape[0] - 1)
  return sorted_pool[pos] == keys


def _select(space, cands, groups, quotas, seen_sorted, size):
  """Picks `size` rows of `cands`: per group g the first quotas[g] new ones, random fills the rest.

  `groups` (static tuple of lengths) splits `cands` into consecutive blocks; the last block is the
  random fill. A candidate is new if valid, unseen and the first of its uid among `cands`.
  """
  uids = space.uid(cands)
  valid = space.is_valid(cands)
  new = valid & _first_occurrence(uids) & ~_is_member(uids, seen_sorted)
  take, start, taken = [], 0, 0
  for length, quota in zip(groups, quotas, strict=True):
    block = new[start : start + length]
    limit = size - taken if quota is None else quota  # None: fill up to `size`
    t = block & (jnp.cumsum(block) <= limit)
    take.append(t)
    taken = taken + jnp.sum(t)
    start += length
  take = jnp.concatenate(take)
  c = cands.shape[0]
  # Taken candidates first in candidate order; only if too few were taken, valid repeats, and
  # invalid ones last of all.
  i = jnp.arange(c)
  order = jnp.argsort(jnp.where(take, i, jnp.where(valid, c + i, 2 * c + i)))
  return cands[order[:size]]


@dataclasses.dataclass(frozen=True)
class SPOSEvolution:
  """SPOS evolution over `space`: P per generation, TopK k, per-gene mutation probability."""

  space: SearchSpace
  population_size: int = 50
  topk: int = 10
  mutation_prob: float = 0.1
  max_tries: int = 10
  history_size: int = 1000

  def __post_init__(self):
    p, h = self.population_size, self.history_size
    if p < 2:
      raise ConfigError(f"SPOS evolution needs population_size >= 2, got {p}")
    if not 1 <= self.topk <= p:
      raise ConfigError(f"SPOS evolution needs 1 <= topk ({self.topk}) <= population_size ({p})")
    if not 0.0 <= self.mutation_prob <= 1.0:
      raise ConfigError(f"SPOS mutation_prob must lie in [0, 1], got {self.mutation_prob}")
    if self.max_tries < 1:
      raise ConfigError(f"SPOS max_tries must be >= 1, got {self.max_tries}")
    if h < p or h % p:
      raise ConfigError(f"SPOS history_size ({h}) must be a positive multiple of {p} (P)")

  @property
  def ask_size(self) -> int:
    return self.population_size

  def init(self, key: jax.Array) -> State:
    del key  # generation 0 is drawn by the first ask
    return State(
      top_encodings=jnp.zeros((self.topk, self.space.encoding_length), jnp.int32),
      top_fitness=jnp.full((self.topk,), -jnp.inf, jnp.float32),
      seen=jnp.full((self.history_size,), -1, jnp.int32),  # -1 is never a uid
      generation=jnp.zeros((), jnp.int32),
    )

  def ask(self, state: State, key: jax.Array) -> tuple[State, jax.Array]:
    p = self.population_size
    n_cross, n_mut = p // 2, p - p // 2
    nx, nm, nr = self.max_tries * n_cross, self.max_tries * n_mut, self.max_tries * p
    k = jax.random.split(key, 4)  # parents, crossover, mutation, random fill
    parents = state.top_encodings[randint(k[0], (2 * nx + nm,), self.topk)]
    crossed = self.space.crossover(k[1], parents[:nx], parents[nx : 2 * nx])
    mutated = self.space.mutate(k[2], parents[2 * nx :], self.mutation_prob)
    rand = self.space.sample(k[3], nr)
    cands = jnp.concatenate([crossed, mutated, rand])
    # Generation 0 is P_0: random architectures only (TopK is still empty).
    first = state.generation == 0
    quotas = (jnp.where(first, 0, n_cross), jnp.where(first, 0, n_mut), None)
    return state, _select(self.space, cands, (nx, nm, nr), quotas, jnp.sort(state.seen), p)

  def tell(self, state: State, candidates: jax.Array, fitness: jax.Array) -> State:
    p = self.population_size
    candidates = jnp.asarray(candidates, jnp.int32)
    start = (state.generation * p) % self.history_size
    seen = jax.lax.dynamic_update_slice(state.seen, self.space.uid(candidates), (start,))
    # TopK <- best k of TopK ∪ P_t; TopK comes first, so among ties the older one stays.
    fit = jnp.concatenate([state.top_fitness, jnp.asarray(fitness, jnp.float32)])
    top_fitness, best = jax.lax.top_k(fit, self.topk)
    return State(
      top_encodings=jnp.concatenate([state.top_encodings, candidates])[best],
      top_fitness=top_fitness,
      seen=seen,
      generation=state.generation + 1,
    )
