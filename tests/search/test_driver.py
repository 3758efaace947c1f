"""The tabular driver: budgets and prefixes, `SearchResult`, `TableEvaluator`, seed keys."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from search_fixtures import additive_evaluator

from jaxml.search import driver
from jaxml.search.random_search import RandomSearch
from jaxml.spaces import NB201Space
from jaxml.spaces import nb201_encoding as E

EVAL = additive_evaluator(0)
_run = jax.jit(driver.run, static_argnums=(0, 3))


def test_a_longer_run_continues_a_shorter_one():
  # Ask t's key does not depend on the budget; a last ask past the budget is cut (10 = 4+4+2).
  search = RandomSearch(NB201Space(), ask_size=4)
  short = _run(search, jax.random.key(0), EVAL, 10)
  long = _run(search, jax.random.key(0), EVAL, 24)
  assert short.history.shape == (10, 6) and short.fitness.shape == (10,)
  np.testing.assert_array_equal(short.history, long.history[:10])
  np.testing.assert_array_equal(short.fitness, long.fitness[:10])


def test_best_so_far_is_running_max_and_best_after_a_prefix():
  fitness = jnp.array([[1.0, 3.0, 2.0, 5.0], [4.0, 0.0, 4.0, 1.0]])
  history = jnp.arange(2 * 4 * 6, dtype=jnp.int32).reshape(2, 4, 6) % 5
  res = driver.SearchResult(history=history, fitness=fitness)
  np.testing.assert_array_equal(res.best_so_far(), [[1, 3, 3, 5], [4, 4, 4, 4]])
  enc, fit = res.best_after(3)
  np.testing.assert_array_equal(fit, [3.0, 4.0])
  np.testing.assert_array_equal(enc, [history[0, 1], history[1, 0]])  # first among ties
  with pytest.raises(ValueError):
    res.best_after(5)


def test_table_evaluator_is_a_pytree_through_jit():
  f = jax.jit(lambda e, x: e(x))
  x = jnp.asarray(E.enumerate_all()[:7])
  np.testing.assert_array_equal(f(EVAL, x), EVAL.values[:7])
  other = additive_evaluator(9)
  np.testing.assert_array_equal(f(other, x), other.values[:7])


def test_seed_keys_prefix_and_streams():
  a = jax.random.key_data(driver.seed_keys(0, 5))
  b = jax.random.key_data(driver.seed_keys(0, 50))[:5]
  np.testing.assert_array_equal(a, b)
  c = jax.random.key_data(driver.seed_keys(0, 5, stream=1))
  assert not np.array_equal(a, c)
