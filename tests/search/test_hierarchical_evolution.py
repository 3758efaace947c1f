"""EcoNAS hierarchical evolution (ask/tell): pools, promotion, tournaments, aging, fixed shapes."""

import dataclasses

import jax
import numpy as np
import pytest
from search_fixtures import additive_evaluator

from jaxml.errors import ConfigError
from jaxml.search.hierarchical_evolution import HierarchicalEvolution
from jaxml.spaces import NB201Space

SPACE = NB201Space()
EVAL = additive_evaluator()


def cycles(algorithm, n, fitness=EVAL, seed=0):
  """Runs n ask/tell cycles; returns the states after each ask and after each tell."""
  ask, tell = jax.jit(algorithm.ask), jax.jit(algorithm.tell)
  state = algorithm.init(jax.random.key(seed))
  asked, told = [], []
  for c in range(n):
    state, cands = ask(state, jax.random.key(100 * seed + c))
    asked.append((state, np.asarray(cands)))
    state = tell(state, cands, fitness(cands))
    told.append(state)
  return asked, told


def pool_sizes(state):
  return [int(np.sum(np.asarray(state.stage) == p)) for p in (1, 2, 3)]


@pytest.fixture(scope="module")
def official():
  algorithm = HierarchicalEvolution(SPACE)  # 6/5/5 parents, 8 + 4 promotions, K = 28
  return algorithm, *cycles(algorithm, 8)


def test_official_cycle_bookkeeping(official):
  algorithm, asked, told = official
  assert algorithm.ask_size == 28
  # Cycle 0: the initial population, all children.
  assert not np.asarray(asked[0][0].slot_promoted).any()
  assert pool_sizes(told[0]) == [28, 0, 0]
  # Cycle 1: the top 8 of P_E move up; P_2E is empty, so its 4 slots are children of P_E.
  promoted = np.asarray(asked[1][0].slot_promoted)
  assert promoted[:8].all() and not promoted[8:].any()
  assert pool_sizes(told[1]) == [28 - 8 + 20, 8, 0]
  # From cycle 2 on, 8 + 4 promotions and 16 children per cycle.
  for state, _ in asked[2:]:
    np.testing.assert_array_equal(np.asarray(state.slot_promoted), np.arange(28) < 12)
  assert pool_sizes(told[2]) == [40 - 8 + 16, 8 - 4 + 8, 4]
  assert [int(s.num_networks) for s in told[:3]] == [28, 48, 64]
  assert [int(s.cycle) for s in told[:3]] == [1, 2, 3]


def test_promotion_takes_the_top_of_each_pool_and_keeps_the_best_fitness(official):
  _, asked, told = official
  before, (state, cands) = told[4], asked[5]
  stage, fitness = np.asarray(before.stage), np.asarray(before.fitness)
  rows = np.asarray(state.slot_rows)
  for pool, block in ((1, slice(0, 8)), (2, slice(8, 12))):
    members = fitness[stage == pool]
    n = block.stop - block.start
    np.testing.assert_array_equal(np.sort(fitness[rows[block]]), np.sort(members)[-n:])
    np.testing.assert_array_equal(stage[rows[block]], pool)
    np.testing.assert_array_equal(cands[block], np.asarray(before.encodings)[rows[block]])
  after = told[5]
  # A promoted network moves one pool up, keeps its id and its best fitness over stages.
  np.testing.assert_array_equal(np.asarray(after.stage)[rows[:12]], stage[rows[:12]] + 1)
  np.testing.assert_array_equal(
    np.asarray(after.network)[rows[:12]], np.asarray(before.network)[rows[:12]]
  )
  new = np.asarray(EVAL(cands[:12]))
  np.testing.assert_array_equal(
    np.asarray(after.fitness)[rows[:12]], np.maximum(fitness[rows[:12]], new)
  )
  # Children take fresh rows with new consecutive ids and enter P_E.
  child_rows = rows[12:]
  assert len(set(child_rows)) == 16 and not set(child_rows) & set(rows[:12])
  ids = np.asarray(after.network)[child_rows]
  np.testing.assert_array_equal(ids, int(before.num_networks) + np.arange(16))
  np.testing.assert_array_equal(np.asarray(after.stage)[child_rows], 1)


def test_children_mutate_one_position_of_a_parent_from_their_pool(official):
  _, asked, told = official
  before, (_, cands) = told[6], asked[7]
  enc, stage = np.asarray(before.encodings), np.asarray(before.stage)
  for j, pool in zip(range(12, 28), [1] * 6 + [2] * 5 + [3] * 5, strict=True):
    parents = enc[stage == pool]
    diffs = (parents != cands[j]).sum(axis=1)
    assert (diffs == 1).any(), f"slot {j} is not one mutation away from any member of P_{pool}E"


SMALL = HierarchicalEvolution(SPACE, parents=(2, 1, 1), promote=(1, 1), max_age=2)


@pytest.fixture(scope="module")
def small():
  return cycles(SMALL, 8)


def test_networks_not_trained_for_max_age_cycles_leave_the_pools(small):
  asked, told = small
  for c, state in enumerate(told):
    alive = np.asarray(state.stage) > 0
    age = int(state.cycle) - np.asarray(state.updated)
    assert (age[alive] < 2).all() and (age[alive] >= 1).all()
    # The archive never overwrites a live network: promotions read live rows, children dead ones.
    if c + 1 < len(asked):
      nxt = asked[c + 1][0]
      rows, prom = np.asarray(nxt.slot_rows), np.asarray(nxt.slot_promoted)
      assert alive[rows[prom]].all() and not alive[rows[~prom]].any()
  assert int(told[-1].num_networks) > SMALL.capacity // 2  # the ring buffer wrapped around


def test_random_children_ignore_parents_but_keep_the_schedule(small):
  asked, told = cycles(dataclasses.replace(SMALL, random_children=True), 4)
  for c in range(4):
    assert pool_sizes(told[c]) == pool_sizes(small[1][c])
  # Random children are (almost surely) not all one mutation from an archive member.
  enc, stage = np.asarray(told[2].encodings), np.asarray(told[2].stage)
  dist = (enc[stage > 0][None] != asked[3][1][4:, None]).sum(-1)
  assert not (dist == 1).any(axis=1).all()


@pytest.mark.parametrize(
  "kwargs, match",
  [
    ({"parents": (1, 1)}, "parents must be 3 counts"),
    ({"parents": (0, 0, 0)}, "no children"),
    ({"promote": (1, -1)}, "promote must be 2 counts"),
    ({"tournament_divisor": 0}, "tournament_divisor"),
    ({"max_age": 1}, "max_age must be >= 2"),
  ],
)
def test_bad_hyper_parameters_are_refused(kwargs, match):
  with pytest.raises(ConfigError, match=match):
    HierarchicalEvolution(SPACE, **kwargs)
