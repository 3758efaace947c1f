"""Random search (Bergstra & Bengio, JMLR 2012; the NAS-Bench-201 "RS" baseline), ask/tell.

Every ask draws `ask_size` architectures uniformly at random from the space (with replacement,
like the NAS-Bench-201 baseline, so a repeated draw costs a query); tell learns nothing. The
search returns the best architecture it queried (`SearchResult.best_after`). With real training,
`ask_size` = K copies trains K random architectures per call.
"""

import dataclasses

import jax
from flax import struct

from jaxml.errors import ConfigError
from jaxml.spaces.base import SearchSpace


@struct.dataclass
class State:
  """Random search keeps no state (an empty pytree)."""


@dataclasses.dataclass(frozen=True)
class RandomSearch:
  """Uniform sampling of `ask_size` architectures of `space` per ask."""

  space: SearchSpace
  ask_size: int = 1

  def __post_init__(self):
    if self.ask_size < 1:
      raise ConfigError(f"random search needs ask_size >= 1, got {self.ask_size}")

  def init(self, key: jax.Array) -> State:
    del key
    return State()

  def ask(self, state: State, key: jax.Array) -> tuple[State, jax.Array]:
    return state, self.space.sample(key, self.ask_size)

  def tell(self, state: State, candidates: jax.Array, fitness: jax.Array) -> State:
    del candidates, fitness
    return state
