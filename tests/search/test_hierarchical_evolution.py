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
  # 6/5/5 parents, 8 + 4 promotions, K = 28, 16 initial networks, max_age 10
  algorithm = HierarchicalEvolution(SPACE)
  return algorithm, *cycles(algorithm, 8)


def test_official_cycle_bookkeeping(official):
  algorithm, asked, told = official
  assert algorithm.ask_size == 28 and algorithm.initial_size == 16
  # Cycle 0: the initial population of 16 (official search/main.py), all children; the other
  # 12 slots are inactive: they take no row and tell ignores their fitness.
  state = asked[0][0]
  assert not np.asarray(state.slot_promoted).any()
  np.testing.assert_array_equal(np.asarray(state.slot_active), np.arange(28) < 16)
  np.testing.assert_array_equal(np.asarray(state.slot_rows)[16:], -1)
  assert pool_sizes(told[0]) == [16, 0, 0]
  np.testing.assert_array_equal(np.sort(np.asarray(told[0].network)[:16]), np.arange(16))
  assert (np.asarray(told[0].network)[16:] == -1).all()
  # Cycle 1: the top 8 of P_E move up; P_2E is empty, so its 4 slots are children of P_E.
  promoted = np.asarray(asked[1][0].slot_promoted)
  assert promoted[:8].all() and not promoted[8:].any()
  assert pool_sizes(told[1]) == [16 - 8 + 20, 8, 0]
  # From cycle 2 on, 8 + 4 promotions and 16 children per cycle, every slot active.
  for state, _ in asked[1:]:
    assert np.asarray(state.slot_active).all()
  for state, _ in asked[2:]:
    np.testing.assert_array_equal(np.asarray(state.slot_promoted), np.arange(28) < 12)
  assert pool_sizes(told[2]) == [28 - 8 + 16, 8 - 4 + 8, 4]
  assert [int(s.num_networks) for s in told[:3]] == [16, 36, 52]
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


SMALL = HierarchicalEvolution(SPACE, parents=(2, 1, 1), promote=(1, 1), max_age=2, initial_size=4)


@pytest.fixture(scope="module")
def small():
  return cycles(SMALL, 8)


def test_networks_not_trained_for_max_age_cycles_leave_the_pools(small):
  asked, told = small
  for c, state in enumerate(told):
    alive = np.asarray(state.stage) > 0
    age = int(state.cycle) - np.asarray(state.updated)
    assert (age[alive] < 2).all() and (age[alive] >= 1).all()
    # The archive never overwrites a live network: promotions read live rows, children free ones.
    if c + 1 < len(asked):
      nxt = asked[c + 1][0]
      rows, prom = np.asarray(nxt.slot_rows), np.asarray(nxt.slot_promoted)
      assert alive[rows[prom]].all() and not alive[rows[~prom]].any()
  assert int(told[-1].num_networks) > SMALL.capacity  # rows were reused


def check_archive(algorithm, n, fitness_of, seed):
  """Runs n cycles and checks the archive against a host-side model of the official rules after
  every ask and tell: a live network keeps its row, encoding, stage and best fitness until it is
  removed (untrained for max_age cycles); a child takes a row no live network holds."""
  ask, tell = jax.jit(algorithm.ask), jax.jit(algorithm.tell)
  state = algorithm.init(jax.random.key(seed))
  rng = np.random.default_rng(seed)
  live = {}  # network id -> dict(row, enc, stage, fitness, updated)
  for c in range(n):
    state, cands = ask(state, jax.random.fold_in(jax.random.key(seed), c))
    cands = np.asarray(cands)
    rows = np.asarray(state.slot_rows)
    promoted, active = np.asarray(state.slot_promoted), np.asarray(state.slot_active)
    held = {net["row"]: i for i, net in live.items()}
    child = active & ~promoted
    assert len(set(rows[active])) == active.sum(), f"cycle {c}: two slots train one row"
    assert not set(rows[child]) & set(held), f"cycle {c}: a child takes a live network's row"
    assert ((rows[child] >= 0) & (rows[child] < algorithm.capacity)).all()
    assert all(rows[j] in held for j in np.flatnonzero(promoted))
    stage = np.where(promoted, np.asarray(state.stage)[rows], 0) + 1
    fit = fitness_of(rng, stage).astype(np.float32)
    first_id = int(state.num_networks)
    state = tell(state, cands, fit)
    for rank, j in enumerate(np.flatnonzero(child)):
      live[first_id + rank] = dict(row=rows[j], enc=cands[j], stage=1, fitness=fit[j], updated=c)
    for j in np.flatnonzero(promoted):
      net = live[held[rows[j]]]
      net.update(stage=net["stage"] + 1, fitness=max(net["fitness"], fit[j]), updated=c)
    live = {i: net for i, net in live.items() if c + 1 - net["updated"] < algorithm.max_age}
    # The archive holds exactly the live networks, each in its own row with its own data.
    enc, st, ids, best = (
      np.asarray(x) for x in (state.encodings, state.stage, state.network, state.fitness)
    )
    assert (st > 0).sum() == len(live), f"cycle {c}"
    for i, net in live.items():
      r = net["row"]
      assert ids[r] == i and st[r] == net["stage"] and best[r] == net["fitness"], f"cycle {c}"
      assert (enc[r] == net["enc"]).all(), f"cycle {c}, network {i}"
  return state, live


def uniform_fitness(rng, stage):
  return rng.random(stage.shape)


def fitness_grows_with_stage(rng, stage):
  return rng.random(stage.shape) * np.sqrt(stage)


@pytest.mark.parametrize(
  "fitness_of, seed",
  [
    (uniform_fitness, 0),
    # Longer training scores higher, as in the proxy. With the former ring-buffer archive
    # (K * (max_age + 3) rows, children in creation order) this run handed live networks' rows
    # to children at cycles 35 and 64.
    (fitness_grows_with_stage, 7),
  ],
  ids=["uniform", "grows_with_stage"],
)
def test_official_settings_never_reuse_a_live_row_over_120_cycles(fitness_of, seed):
  algorithm = HierarchicalEvolution(SPACE)
  state, live = check_archive(algorithm, 120, fitness_of, seed)
  assert int(state.num_networks) == 16 + 20 + 118 * 16 > 5 * algorithm.capacity
  assert {net["stage"] for net in live.values()} == {1, 2, 3}
  assert algorithm.capacity == 28 * 10


def test_capacity_is_exactly_enough_when_nothing_is_promoted():
  """promote = (0, 0) keeps every network max_age - 1 cycles untrained: K * (max_age - 1) live
  rows plus K children fill all K * max_age rows, every cycle, and nothing is overwritten."""
  algorithm = HierarchicalEvolution(
    SPACE, parents=(2, 1, 1), promote=(0, 0), max_age=3, initial_size=4
  )
  ask, tell = jax.jit(algorithm.ask), jax.jit(algorithm.tell)
  state = algorithm.init(jax.random.key(0))
  for c in range(12):
    state, cands = ask(state, jax.random.key(c))
    used = (np.asarray(state.stage) > 0).sum() + len(set(np.asarray(state.slot_rows).tolist()))
    assert used == min(4 * (c + 1), algorithm.capacity) == min(4 * (c + 1), 12)
    state = tell(state, cands, EVAL(cands))
  check_archive(algorithm, 30, uniform_fitness, seed=1)


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
    ({"initial_size": 0}, "initial_size must be in"),
    ({"initial_size": 29}, "initial_size must be in"),
  ],
)
def test_bad_hyper_parameters_are_refused(kwargs, match):
  with pytest.raises(ConfigError, match=match):
    HierarchicalEvolution(SPACE, **kwargs)
