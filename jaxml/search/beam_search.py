"""Greedy beam search over a positional space, one position (block) at a time: CRNAS's spatial
search (Liang et al., "Computation Reallocation for Object Detection", ICLR 2020, §3.3, beam
K = 3), in the ask/tell shape of `jaxml.search` (docs/search.md).

The beam holds `beam_size` partial architectures: positions before `state.position` decided,
the rest undecided (-1). One ask extends every beam member by every value of the next position
(ask_size = beam_size * max bound candidates, so every ask has one shape); the evaluator scores
each partial candidate (CRNAS: completes the undecided positions uniformly at random, one
completion per validation mini-batch, and averages the mini-batch scores; `complete` draws
them); tell keeps the `beam_size` best. The first ask extends a single empty architecture: the
beam's other slots are empty (score -inf) and their candidates, duplicates of the live ones, are
never kept (`live`), so after the first block the beam holds min(beam_size, bound) distinct
members and exactly `beam_size` from then on once enough exist (3 x 3 dilations: 3 after every
block). After L tells the beam holds complete architectures; `best` is the top one.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import struct

from jaxml.errors import ConfigError
from jaxml.spaces.base import SearchSpace, randint

UNDECIDED = -1


@struct.dataclass
class State:
  position: jax.Array  # int32: the position the next ask decides
  beam: jax.Array  # int32 [B, L]: partial architectures (-1 = undecided)
  scores: jax.Array  # float32 [B]: their scores (-inf = empty slot)


@dataclasses.dataclass(frozen=True)
class BeamSearch:
  """Beam search with `beam_size` members over `space` (positions decided in order 0..L-1)."""

  space: SearchSpace
  beam_size: int = 3

  def __post_init__(self):
    if self.beam_size < 1:
      raise ConfigError(f"beam search: beam_size must be >= 1, got {self.beam_size}")

  @property
  def choices(self) -> int:
    return int(self.space.bounds().max())

  @property
  def ask_size(self) -> int:
    return self.beam_size * self.choices

  @property
  def num_steps(self) -> int:
    return self.space.encoding_length

  def init(self, key: jax.Array | None = None) -> State:
    del key  # deterministic: one empty architecture
    length = self.space.encoding_length
    scores = jnp.full((self.beam_size,), -jnp.inf, jnp.float32).at[0].set(0.0)
    return State(
      jnp.zeros((), jnp.int32), jnp.full((self.beam_size, length), UNDECIDED, jnp.int32), scores
    )

  def ask(self, state: State, key: jax.Array | None = None) -> tuple[State, jax.Array]:
    """int32 [ask_size, L]: member b extended by value c at row b * choices + c."""
    del key
    values = jnp.tile(jnp.arange(self.choices, dtype=jnp.int32), self.beam_size)
    parents = jnp.repeat(state.beam, self.choices, axis=0)
    at = jnp.arange(self.space.encoding_length) == state.position
    return state, jnp.where(at, values[:, None], parents)

  def live(self, state: State) -> jax.Array:
    """bool [ask_size]: candidates of a non-empty beam slot with a value inside the bound."""
    bound = jnp.asarray(self.space.bounds(), jnp.int32)[state.position]
    values = jnp.tile(jnp.arange(self.choices, dtype=jnp.int32), self.beam_size)
    alive = jnp.repeat(jnp.isfinite(state.scores), self.choices)
    return alive & (values < bound)

  def tell(self, state: State, candidates: jax.Array, fitness: jax.Array) -> State:
    """Keep the `beam_size` best live candidates (ties: the earlier row)."""
    fitness = jnp.where(self.live(state), jnp.asarray(fitness, jnp.float32), -jnp.inf)
    scores, rows = jax.lax.top_k(fitness, self.beam_size)
    return State(state.position + 1, jnp.asarray(candidates, jnp.int32)[rows], scores)

  def best(self, state: State) -> jax.Array:
    """int32 [L]: the top member (complete after `num_steps` tells)."""
    return state.beam[jnp.argmax(state.scores)]

  def complete(self, key: jax.Array, partial: jax.Array, n: int) -> jax.Array:
    """int32 [n, M, L]: n uniform completions of each partial architecture [M, L] (decided
    positions kept; CRNAS draws one per validation mini-batch)."""
    partial = jnp.asarray(partial, jnp.int32)
    bounds = jnp.asarray(self.space.bounds(), jnp.int32)
    fill = randint(key, (n, *partial.shape), bounds)
    return jnp.where(partial == UNDECIDED, fill, partial[None])
