"""Hierarchical proxy evolution of EcoNAS (Zhou et al., "EcoNAS: Finding Proxies for Economical
Neural Architecture Search", CVPR 2020, Sec. 4; official code DongzhanZhou/EcoNAS search/main.py),
ask/tell.

Networks sit in three pools by how many stages of E epochs of one 3E-epoch schedule they have
been trained: P_E (stage 1), P_2E (stage 2), P_3E (stage 3). One ask is one cycle of
K = `ask_size` trainings, all asked at once (the official code trains them in one parallel batch):

    promotions: the top `promote[0]` of P_E and the top `promote[1]` of P_2E by fitness train one
      more stage, continuing from their checkpoints; they move to P_2E / P_3E
    children:   `parents[p]` parents from pool p, each the winner of a tournament of
      floor(n_p / tournament_divisor) + 1 members of the pool drawn uniformly with replacement
      (n_p = pool size; official: 6 / 5 / 5 parents, divisor 4); a child is its parent with one
      position changed (`SearchSpace.mutate_one`; the official mutation changes one op or one
      input); children train their first stage and enter P_E
    tell:       the fitness of every slot; a network's fitness is the best over its stages (the
      official record keeps each stage's best val accuracy and ranks by the maximum); then every
      network not trained in the last `max_age` cycles is removed (official: 10)

The first ask (empty pools) is the initial population: `initial_size` random architectures
(official: 16, `for i in range(16)` in search/main.py). Shapes are fixed: every ask has
K = sum(parents) + sum(promote) slots, so the first ask's slots from `initial_size` on are
inactive (`State.slot_active` False): the caller may train them to keep its population's shape,
but tell ignores their fitness and they become no network. (The official code records its
initial networks as trained in iteration 0, like its first cycle's; here they are cycle 0 and the
first cycle is cycle 1, so they leave the pools one cycle earlier.) Where the official code
trains fewer networks in a cycle (a pool shorter than its promotion quota, or an empty pool that
gives no parents: its first cycle trains 6 children and 8 promotions), the free slots here become
children of tournament winners of P_E (random architectures while P_E is empty), so every cycle
after the initial one trains exactly K networks. `random_children=True` draws every child
uniformly from the space instead: random search run on the same pools, promotions and schedule
(the baseline at equal cost).

The archive has `capacity` rows; a network keeps its row from its creation to its removal. A
child takes a free row (stage 0: removed, or never used), the lowest first. It is not a ring
buffer: promotions are not consecutive (a network may wait up to max_age - 1 cycles in P_E and
again in P_2E, so it can live 3 * max_age - 2 cycles), and the former ring of K * (max_age + 3)
rows handed live networks' rows to children (at cycles 35 and 64 of the grows_with_stage run of
tests/search/test_hierarchical_evolution.py). Capacity K * max_age always suffices: at the ask
of cycle c the live networks are those last trained in cycles c - max_age + 1 .. c - 1 (tell
removes the others), at most K per cycle since a cycle trains K slots, so at most
K * (max_age - 1) rows are held and the <= K children find free rows. The bound is reached when
nothing is promoted (promote = (0, 0)). `State.slot_rows` tells the caller which row each slot
of the last ask trains (a promoted network's own row, or the free row a child takes; -1 for an
inactive slot), so the caller can find and store weights by row.
"""

import dataclasses

import jax
import jax.numpy as jnp
from flax import struct

from jaxml.errors import ConfigError
from jaxml.spaces.base import SearchSpace, uniform

NUM_POOLS = 3  # P_E, P_2E, P_3E: stages 1, 2, 3 of one schedule


@struct.dataclass
class State:
  """The archive of networks and the plan of the last ask.

  Attributes:
    encodings: int32 [M, L] architectures.
    stage: int32 [M] stages trained (= pool: 1 P_E, 2 P_2E, 3 P_3E); 0 = free or removed.
    fitness: float32 [M] best val accuracy over the network's stages (-inf for free rows).
    updated: int32 [M] cycle of the network's last training.
    network: int32 [M] network id (creation order, from 0); -1 for rows never used.
    slot_rows: int32 [K] the row each slot of the last ask trains.
    slot_promoted: bool [K] whether that slot continues an existing network.
    slot_active: bool [K] whether that slot trains a network (False only for the first ask's
      slots beyond `initial_size`).
    num_networks: int32, networks created so far.
    cycle: int32, cycles told so far (the next ask is cycle `cycle`).
  """

  encodings: jax.Array
  stage: jax.Array
  fitness: jax.Array
  updated: jax.Array
  network: jax.Array
  slot_rows: jax.Array
  slot_promoted: jax.Array
  slot_active: jax.Array
  num_networks: jax.Array
  cycle: jax.Array


@dataclasses.dataclass(frozen=True)
class HierarchicalEvolution:
  """EcoNAS hierarchical evolution over `space` (see the module docstring)."""

  space: SearchSpace
  parents: tuple[int, int, int] = (6, 5, 5)
  promote: tuple[int, int] = (8, 4)
  tournament_divisor: int = 4
  max_age: int = 10
  random_children: bool = False
  initial_size: int = 16

  def __post_init__(self):
    p, q = tuple(self.parents), tuple(self.promote)
    if len(p) != NUM_POOLS or min(p) < 0:
      raise ConfigError(f"parents must be 3 counts >= 0 (from P_E, P_2E, P_3E), got {p}")
    if len(q) != NUM_POOLS - 1 or min(q) < 0:
      raise ConfigError(f"promote must be 2 counts >= 0 (from P_E, P_2E), got {q}")
    if sum(p) < 1:
      raise ConfigError(f"parents {p} give no children: the search would never propose anything")
    if self.tournament_divisor < 1:
      raise ConfigError(f"tournament_divisor must be >= 1, got {self.tournament_divisor}")
    if self.max_age < 2:
      # A network trained at cycle c is promoted at c + 1 only if it is still alive then.
      raise ConfigError(f"max_age must be >= 2 cycles (promotion needs it), got {self.max_age}")
    if not 1 <= self.initial_size <= self.ask_size:
      raise ConfigError(
        f"initial_size must be in [1, K = sum(parents) + sum(promote) = {self.ask_size}] (the "
        f"first ask's slots), got {self.initial_size}"
      )

  @property
  def ask_size(self) -> int:
    return sum(self.parents) + sum(self.promote)

  @property
  def capacity(self) -> int:
    # At most K networks per last-training cycle over max_age - 1 cycles, plus K children.
    return self.ask_size * self.max_age

  def init(self, key: jax.Array) -> State:
    del key  # the initial population is drawn by the first ask
    m, k = self.capacity, self.ask_size
    return State(
      encodings=jnp.zeros((m, self.space.encoding_length), jnp.int32),
      stage=jnp.zeros((m,), jnp.int32),
      fitness=jnp.full((m,), -jnp.inf, jnp.float32),
      updated=jnp.zeros((m,), jnp.int32),
      network=jnp.full((m,), -1, jnp.int32),
      slot_rows=jnp.zeros((k,), jnp.int32),
      slot_promoted=jnp.zeros((k,), bool),
      slot_active=jnp.zeros((k,), bool),
      num_networks=jnp.zeros((), jnp.int32),
      cycle=jnp.zeros((), jnp.int32),
    )

  def _slot_pools(self) -> tuple[jax.Array, jax.Array]:
    """Static slot layout: (promotion source pool or 0, parent pool of a child slot)."""
    n_pe, n_p2e = self.promote
    promo = [1] * n_pe + [2] * n_p2e + [0] * sum(self.parents)
    # A promotion slot left free becomes a child of P_E.
    parent = [1] * (n_pe + n_p2e) + [p + 1 for p, n in enumerate(self.parents) for _ in range(n)]
    return jnp.asarray(promo, jnp.int32), jnp.asarray(parent, jnp.int32)

  def ask(self, state: State, key: jax.Array) -> tuple[State, jax.Array]:
    k, m = self.ask_size, self.capacity
    k_draw, k_mutate, k_random = jax.random.split(key, 3)
    promo_pool, parent_pool = self._slot_pools()
    pools = jnp.arange(1, NUM_POOLS + 1)
    in_pool = state.stage[None, :] == pools[:, None]  # [3, M]
    sizes = in_pool.sum(axis=1)  # [3]

    # Promotions: slot j of pool p's block takes the j-th best of the pool, if it has one.
    promoted_rows, promoted_ok = [], []
    for p, n in enumerate(self.promote):
      if n:
        _, rows = jax.lax.top_k(jnp.where(in_pool[p], state.fitness, -jnp.inf), n)
        promoted_rows.append(rows.astype(jnp.int32))
        promoted_ok.append(jnp.arange(n) < sizes[p])
    n_children = sum(self.parents)
    rows_p = jnp.concatenate([*promoted_rows, jnp.zeros((n_children,), jnp.int32)])
    is_promoted = jnp.concatenate([*promoted_ok, jnp.zeros((n_children,), bool)])
    is_promoted = is_promoted & (promo_pool > 0)

    # Children: an empty parent pool hands its slots to P_E.
    pool = jnp.where(sizes[parent_pool - 1] > 0, parent_pool, 1)
    n = sizes[pool - 1]  # [K] members of each slot's pool
    # Members of each pool first (stable), so member i of pool p is members[p - 1, i].
    members = jnp.argsort(~in_pool, axis=1, stable=True)
    most = m // self.tournament_divisor + 1
    draws = jnp.minimum((uniform(k_draw, (k, most)) * n[:, None]).astype(jnp.int32), n[:, None] - 1)
    draws = jnp.maximum(draws, 0)
    drawn_rows = members[pool - 1][jnp.arange(k)[:, None], draws]  # [K, most]
    in_tournament = jnp.arange(most)[None, :] < (n // self.tournament_divisor + 1)[:, None]
    score = jnp.where(in_tournament, state.fitness[drawn_rows], -jnp.inf)
    winner = drawn_rows[jnp.arange(k), jnp.argmax(score, axis=1)]
    mutated = self.space.mutate_one(k_mutate, state.encodings[winner])
    random = self.space.sample(k_random, k)
    use_random = (n == 0) | self.random_children
    children = jnp.where(use_random[:, None], random, mutated)

    candidates = jnp.where(is_promoted[:, None], state.encodings[rows_p], children)
    # Only the first ask has inactive slots: the initial population is smaller than K.
    active = (state.cycle > 0) | (jnp.arange(k) < self.initial_size)
    # Children take free rows (their networks removed or never created), lowest first, in slot
    # order; a live network's row holds its encoding, fitness and (for the caller) weights until
    # it is removed. `capacity` guarantees K free rows (see the module docstring).
    is_child = active & ~is_promoted
    child_rank = jnp.cumsum(is_child) - 1
    (free_rows,) = jnp.nonzero(state.stage == 0, size=k, fill_value=-1)
    rows = jnp.where(is_promoted, rows_p, jnp.where(is_child, free_rows[child_rank], -1))
    state = state.replace(
      slot_rows=rows.astype(jnp.int32), slot_promoted=is_promoted, slot_active=active
    )
    return state, candidates.astype(jnp.int32)

  def tell(self, state: State, candidates: jax.Array, fitness: jax.Array) -> State:
    promoted, active = state.slot_promoted, state.slot_active
    # Inactive slots write nowhere: their row is out of range and the scatters drop it.
    rows = jnp.where(active, state.slot_rows, self.capacity)
    fitness = jnp.asarray(fitness, jnp.float32)
    is_child = active & ~promoted
    child_rank = jnp.cumsum(is_child) - 1
    old_fitness = state.fitness.at[rows].get(mode="fill", fill_value=-jnp.inf)
    new_fitness = jnp.where(promoted, jnp.maximum(old_fitness, fitness), fitness)
    new_stage = jnp.where(promoted, state.stage.at[rows].get(mode="fill", fill_value=0) + 1, 1)
    old_ids = state.network.at[rows].get(mode="fill", fill_value=-1)
    new_ids = jnp.where(promoted, old_ids, state.num_networks + child_rank)
    cycle = state.cycle + 1
    stage = state.stage.at[rows].set(new_stage, mode="drop")
    updated = state.updated.at[rows].set(state.cycle, mode="drop")
    # Aging: networks not trained in the last max_age cycles leave every pool.
    dead = (stage > 0) & (cycle - updated >= self.max_age)
    return state.replace(
      encodings=state.encodings.at[rows].set(jnp.asarray(candidates, jnp.int32), mode="drop"),
      stage=jnp.where(dead, 0, stage),
      fitness=jnp.where(dead, -jnp.inf, state.fitness.at[rows].set(new_fitness, mode="drop")),
      updated=updated,
      network=state.network.at[rows].set(new_ids.astype(jnp.int32), mode="drop"),
      num_networks=state.num_networks + jnp.sum(is_child).astype(jnp.int32),
      cycle=cycle,
    )
