"""Synthetic tables, fitness functions and a tiny space shared by the search tests."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxml.search.driver import TableEvaluator
from jaxml.spaces import nb201_encoding as E
from jaxml.spaces.base import SearchSpace


def additive_evaluator(seed: int = 0, relevant_edges: int = 6) -> TableEvaluator:
  """fitness = sum over the first `relevant_edges` edges of w[edge, op]; separable, so hill
  climbing and a factorised policy can find the optimum. With all 6 edges it is unique."""
  w = np.random.default_rng(seed).normal(size=(6, 5))
  w[relevant_edges:] = 0.0
  encs = E.enumerate_all()
  values = 90.0 + w[np.arange(6), encs].sum(1)
  return TableEvaluator(values=jnp.asarray(values, jnp.float32))


def optimum(evaluate: TableEvaluator) -> float:
  return float(jnp.max(evaluate.values))


def _weighted_sum(weights, enc):
  return jnp.sum(weights[jnp.arange(weights.shape[0]), enc], axis=-1)


def weighted_positions(space: SearchSpace, seed: int = 0):
  """A deterministic fitness of any space's encodings: sum_i w[i, enc[i]], w ~ N(0, 1) (a pytree,
  so the compiled driver takes it as an argument), and its optimum (best value per position)."""
  bounds = space.bounds()
  w = np.random.default_rng(seed).normal(size=(space.encoding_length, int(bounds.max())))
  w[np.arange(w.shape[1]) >= bounds[:, None]] = -np.inf  # never chosen: out of range
  best = float(np.max(w, axis=1).sum())
  return jax.tree_util.Partial(_weighted_sum, jnp.asarray(w, jnp.float32)), best


@dataclasses.dataclass(frozen=True)
class TinySpace(SearchSpace):
  """2 positions x 3 choices (9 members) to check rejection and exhaustion exactly; encodings
  with enc[0] == `forbidden_first` are invalid (a stand-in for a FLOPs limit)."""

  forbidden_first: int = -1

  name = "tiny"

  def bounds(self) -> np.ndarray:
    return np.array([3, 3], np.int32)

  def is_valid(self, enc: jax.Array) -> jax.Array:
    return jnp.asarray(enc)[..., 0] != self.forbidden_first

  # Notation, costs and networks are not part of what searches use.
  def to_string(self, enc) -> str:
    raise NotImplementedError

  def from_string(self, s: str) -> np.ndarray:
    raise NotImplementedError

  def flops(self, enc, input_size=None, channels=None):
    raise NotImplementedError

  def params(self, enc, channels=None, num_classes=None):
    raise NotImplementedError

  def network(self, arch=None):
    raise NotImplementedError


TINY_EVAL = TableEvaluator(values=jnp.arange(9, dtype=jnp.float32) * 1.5, index_fn=TinySpace().uid)
