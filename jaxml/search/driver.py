"""The ask/tell protocol of every search, and its tabular driver: `lax.scan` of ask -> look up ->
tell, `jax.vmap` over seeds.

A search algorithm (evosax's shape: Lange, "evosax: JAX-based evolution strategies", 2022) is a
frozen dataclass holding its static hyper-parameters and its `space` (a
`jaxml.spaces.SearchSpace`), hashable so it can be a static argument of `jit`, with three pure,
jittable methods:

    state = algorithm.init(key)                        # a flax.struct pytree
    state, candidates = algorithm.ask(state, key)      # int32 [algorithm.ask_size, L]
    state = algorithm.tell(state, candidates, fitness) # fitness float32 [ask_size], higher = better

The same algorithm runs in a `lax.scan` against a table (`run`, thousands of seeds per call) and
from a Python loop whose fitness comes from training `ask_size` model copies:

    ask, tell = jax.jit(algorithm.ask), jax.jit(algorithm.tell)
    state = algorithm.init(k0)
    for key in keys:
      state, archs = ask(state, key)                  # [K, L]: one architecture per copy
      state = tell(state, archs, train_and_validate(archs))

The driver keeps every query in `SearchResult`, in query order, so the result after any smaller
budget n is a prefix of the run (`best_after`) and the best-so-far curve is a running max.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import jax
import jax.numpy as jnp
from flax import struct

from jaxml.spaces import nb201_encoding
from jaxml.spaces.base import SearchSpace

Evaluator = Callable[[jax.Array], jax.Array]
# Ask t of a run draws from split(key, num_asks)[t]; init draws from fold_in(key, INIT_STREAM).
# With JAX's partitionable threefry (the default) split(key, n)[t] == fold_in(key, t), so the two
# streams never meet, and ask t's key does not depend on the budget: a longer run continues a
# shorter one. (It is the per-step key schedule the tabular REINFORCE search has always used, so
# its published numbers stay bit-identical.)
INIT_STREAM = 2**32 - 1


class SearchAlgorithm(Protocol):
  """What `run` needs of a search (see the module docstring)."""

  space: SearchSpace

  @property
  def ask_size(self) -> int: ...

  def init(self, key: jax.Array) -> Any: ...

  def ask(self, state: Any, key: jax.Array) -> tuple[Any, jax.Array]: ...

  def tell(self, state: Any, candidates: jax.Array, fitness: jax.Array) -> Any: ...


@struct.dataclass
class TableEvaluator:
  """Fitness by table lookup: `values[index_fn(enc)]`; a pytree, so it can cross `jit`.

  Attributes:
    values: float32 [num_archs], fitness of every architecture by index (e.g.
      `NB201Table.values('cifar10')`, the 200-epoch test accuracy).
    index_fn: encoding -> row index (static), e.g. a space's `uid`.
  """

  values: jax.Array
  index_fn: Callable[[jax.Array], jax.Array] = struct.field(
    pytree_node=False, default=nb201_encoding.encoding_to_index
  )

  def __call__(self, enc: jax.Array) -> jax.Array:
    return self.values[self.index_fn(jnp.asarray(enc, jnp.int32))]


def nb201_evaluator(table, dataset: str = "cifar10") -> TableEvaluator:
  """Evaluator that returns an `NB201Table`'s accuracy of `dataset` (noise-free, 200 epochs)."""
  return TableEvaluator(values=table.values(dataset))


@struct.dataclass
class SearchResult:
  """Every query of one search run, in query order (leading axes are added by vmap).

  Attributes:
    history: int32 [..., N, L] the encodings queried.
    fitness: float32 [..., N] the evaluator's fitness of each query.
  """

  history: jax.Array
  fitness: jax.Array

  @property
  def num_queries(self) -> int:
    return self.fitness.shape[-1]

  def best_so_far(self) -> jax.Array:
    """[..., N] best fitness among the first n + 1 queries."""
    return jax.lax.cummax(self.fitness, axis=self.fitness.ndim - 1)

  def best_after(self, n: int) -> tuple[jax.Array, jax.Array]:
    """(encoding [..., L], fitness [...]) the search returns after its first n queries.

    That is the best *queried* architecture by the search's own fitness (first one among ties),
    valid because none of the searches here changes behaviour with its total budget.
    """
    if not 1 <= n <= self.num_queries:
      raise ValueError(f"n must lie in [1, {self.num_queries}], got {n}")
    fit = self.fitness[..., :n]
    i = jnp.argmax(fit, axis=-1)
    enc = jnp.take_along_axis(self.history[..., :n, :], i[..., None, None], axis=-2)[..., 0, :]
    return enc, jnp.take_along_axis(fit, i[..., None], axis=-1)[..., 0]


def run(
  algorithm: SearchAlgorithm, key: jax.Array, evaluate: Evaluator, num_queries: int
) -> SearchResult:
  """One search run of `num_queries` evaluations: ceil(num_queries / ask_size) scan steps of
  ask -> evaluate -> tell. A last ask that overshoots the budget is evaluated and told (the
  state stays whole) but cut from the result. `algorithm` and `num_queries` are static."""
  num_asks = -(-num_queries // algorithm.ask_size)
  state = algorithm.init(jax.random.fold_in(key, INIT_STREAM))

  def step(state, k):
    state, candidates = algorithm.ask(state, k)
    fitness = evaluate(candidates)
    return algorithm.tell(state, candidates, fitness), (candidates, fitness)

  _, (history, fitness) = jax.lax.scan(step, state, jax.random.split(key, num_asks))
  return SearchResult(
    history=history.reshape(-1, history.shape[-1])[:num_queries],
    fitness=fitness.reshape(-1)[:num_queries],
  )


def compile_seeds(algorithm: SearchAlgorithm, keys: jax.Array, evaluate, num_queries: int):
  """AOT-compiles `run` vmapped over `keys` [S]: returns `fn(keys, evaluate) -> SearchResult`.

  `evaluate` is an argument of the compiled program, so it must be a pytree (a `TableEvaluator`,
  or a function wrapped as `jax.tree_util.Partial(fn, *arrays)`); one program serves any table.
  Compiling apart from running lets callers time the two separately.
  """
  fn = jax.vmap(lambda k, e: run(algorithm, k, e, num_queries), in_axes=(0, None))
  return jax.jit(fn).lower(keys, evaluate).compile()


def run_seeds(
  algorithm: SearchAlgorithm, keys: jax.Array, evaluate, num_queries: int
) -> SearchResult:
  """All seeds of one search in one jitted vmapped call (leading axis = seed)."""
  return compile_seeds(algorithm, keys, evaluate, num_queries)(keys, evaluate)


def seed_keys(seed: int, num_seeds: int, stream: int = 0) -> jax.Array:
  """Keys for seeds 0..num_seeds-1: fold_in(fold_in(key(seed), stream), i).

  Seed i's key does not depend on num_seeds, so a 50-seed run is a prefix of a 1,000-seed run;
  `stream` separates independent uses (e.g. one per search method).
  """
  base = jax.random.fold_in(jax.random.key(seed), stream)
  return jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.arange(num_seeds))
