"""An ask/tell search driven by real training: the trunk-loop controller of architecture search.

The same algorithm objects the tabular driver scans against a table (`jaxml.search.driver`) run
here against a population of K trained copies, one architecture per copy:

    ask   -> the search's K candidates become the copies' `hparams['model']['encoding']`
             (a search space's array build in the model registry, e.g. model.name='nb201')
    trunk -> every copy trains its architecture for T steps
    tell  -> the copies' val accuracies are the candidates' fitness; the copies are re-initialised
             (`Reinit`), so each architecture is scored after T steps from scratch

This is the loop of EcoNAS-style proxy search (Zhou et al., CVPR 2020): T steps of training at a
reduced setting are the fitness. Every query is kept in the controller state (`history`,
`fitness`), checkpointed with the population, so a resumed search continues exactly.
`FixedArchitectures` is the controller with nothing to search: copy i trains architecture i for
the whole run (the EcoNAS proxy study).
"""

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxml.errors import ConfigError
from jaxml.search.driver import SearchAlgorithm
from jaxml.trunks import Controller, Keep, Reinit, TrunkReport


@struct.dataclass
class ControllerState:
  """The search's own state plus every query so far (rows in ask order, -1 / -inf unused)."""

  search: object
  asked: jax.Array  # int32 [K, L]: this trunk's candidates
  history: jax.Array  # int32 [trunks * K, L]
  fitness: jax.Array  # float32 [trunks * K]
  num_told: jax.Array  # int32: rows of history filled


class SearchController(Controller):
  """Drives `algorithm` (ask_size == population size K) over `num_trunks` trunks."""

  name = "search"

  def __init__(self, algorithm: SearchAlgorithm, population_size: int, num_trunks: int):
    if algorithm.ask_size != population_size:
      raise ConfigError(
        f"the search asks {algorithm.ask_size} architectures per trunk but the population has "
        f"{population_size} copies: make them equal"
      )
    self.algorithm, self.k, self.num_trunks = algorithm, population_size, num_trunks
    self._ask, self._tell = jax.jit(algorithm.ask), jax.jit(algorithm.tell)

  def init(self, key):
    length = self.algorithm.space.encoding_length
    return ControllerState(
      search=self.algorithm.init(key),
      asked=jnp.zeros((self.k, length), jnp.int32),
      history=jnp.full((self.num_trunks * self.k, length), -1, jnp.int32),
      fitness=jnp.full((self.num_trunks * self.k,), -jnp.inf, jnp.float32),
      num_told=jnp.zeros((), jnp.int32),
    )

  def ask(self, state: ControllerState, key):
    search, candidates = self._ask(state.search, key)
    state = state.replace(search=search, asked=candidates)
    return state, {"model": {"encoding": np.asarray(candidates)}}, {}

  def tell(self, state: ControllerState, report: TrunkReport):
    fitness = jnp.asarray(report.rewards, jnp.float32)
    rows = state.num_told + jnp.arange(self.k)
    state = state.replace(
      search=self._tell(state.search, state.asked, fitness),
      history=state.history.at[rows].set(state.asked),
      fitness=state.fitness.at[rows].set(fitness),
      num_told=state.num_told + self.k,
    )
    info = {"best_fitness": float(jnp.max(state.fitness))}
    # The last trunk's copies stay as trained, so the final evaluation reports them.
    last = report.trunk + 1 >= self.num_trunks
    return state, Keep() if last else Reinit(tuple(range(self.k))), info

  def history(self, state: ControllerState) -> dict:
    return {"encodings": np.asarray(state.asked)}

  def best(self, state: ControllerState) -> tuple[np.ndarray, float]:
    """The best queried architecture and its fitness (first among ties)."""
    i = int(jnp.argmax(state.fitness))
    return np.asarray(state.history[i]), float(state.fitness[i])

  def summary(self, state: ControllerState, history: dict, workdir) -> dict:
    del history, workdir
    enc, fit = self.best(state)
    space = self.algorithm.space
    return {
      "queries": int(state.num_told),
      "best_encoding": enc.tolist(),
      "best_architecture": space.to_string(enc),
      "best_fitness": fit,
    }


class FixedArchitectures(Controller):
  """Trunk-loop controller that gives copy i architecture i for the whole run (EcoNAS's proxy
  study has nothing to decide between trunks)."""

  name = "proxy"

  def __init__(self, encodings: np.ndarray):
    self.encodings = np.asarray(encodings, np.int32)

  def init(self, key):
    del key
    return {"encodings": jnp.asarray(self.encodings)}

  def ask(self, state, key):
    del key
    return state, {"model": {"encoding": np.asarray(state["encodings"])}}, {}

  def summary(self, state, history, workdir) -> dict:
    del history, workdir
    return {"encodings": np.asarray(state["encodings"]).tolist()}
