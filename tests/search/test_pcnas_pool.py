"""PC-NAS partial model pool (jaxml.search.pcnas_pool): extension, top-P shrinking, prefix-
respecting sampling, constraint handling and determinism, on NB201, DARTS (uneven choices per
layer) and a tiny constrained space."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from search_fixtures import TinySpace, additive_evaluator, weighted_positions

from jaxml.errors import ConfigError
from jaxml.search import pcnas_pool
from jaxml.search.pcnas_pool import PartialModelPool
from jaxml.spaces import DARTSSpace, NB201Space


@dataclasses.dataclass(frozen=True)
class ConvLimitedNB201(NB201Space):
  """NB201 with at most 2 nor_conv_3x3 edges (a jittable stand-in for a FLOPs limit)."""

  def is_valid(self, enc):
    return jnp.sum(jnp.asarray(enc) == 3, axis=-1) <= 2


def _pool_with(search: PartialModelPool, prefixes, fixed: int) -> pcnas_pool.Pool:
  """A full pool of the given prefixes (P rows)."""
  prefixes = jnp.asarray(prefixes, jnp.int32)
  p = prefixes.shape[0]
  return pcnas_pool.Pool(prefixes, jnp.ones(p, bool), jnp.int32(fixed), jnp.zeros(p, jnp.float32))


def test_init_is_the_whole_space():
  pool = PartialModelPool(NB201Space(), pool_size=4).init()
  assert pool.live.tolist() == [True, False, False, False]
  assert int(pool.fixed) == 0 and pool.prefixes.shape == (4, 6)


@pytest.mark.parametrize("space", [NB201Space(), DARTSSpace()], ids=["nb201", "darts"])
def test_extend_is_every_member_times_every_choice(space):
  search = PartialModelPool(space, pool_size=3)
  fixed = 2
  prefixes = np.zeros((3, space.encoding_length), np.int32)
  prefixes[:, :fixed] = [[0, 1], [1, 0], [1, 1]]
  pool = _pool_with(search, prefixes, fixed).replace(live=jnp.array([True, True, False]))
  cands = jax.jit(search.extend)(pool)
  n = int(space.bounds()[fixed])  # choices of layer `fixed` (DARTS: 2 inputs, NB201: 5 ops)
  assert int(cands.fixed) == fixed + 1
  live = np.asarray(cands.prefixes)[np.asarray(cands.live)]
  assert len(live) == 2 * n  # the dead member adds nothing; choices past the bound are dead
  expected = {tuple(prefixes[m, :fixed]) + (c,) for m in range(2) for c in range(n)}
  assert {tuple(r[: fixed + 1]) for r in live} == expected
  assert not live[:, fixed + 1 :].any()


def test_extend_refuses_a_pool_of_whole_architectures():
  search = PartialModelPool(NB201Space(), pool_size=2)
  with pytest.raises(ConfigError, match="whole architectures"):
    search.extend(_pool_with(search, np.zeros((2, 6)), 6))


def test_keep_top_keeps_exactly_the_top_p():
  search = PartialModelPool(NB201Space(), pool_size=4)
  prefixes = np.zeros((4, 6), np.int32)
  prefixes[:, 0] = [0, 1, 2, 3]
  cands = search.extend(_pool_with(search, prefixes, 1))  # 20 distinct candidates
  rng = np.random.default_rng(0)
  pot = rng.normal(size=cands.live.shape[0]).astype(np.float32)
  pot[3] = 10.0  # best, but dead below: must not be kept
  live = np.asarray(cands.live).copy()
  live[3] = False
  kept = search.keep_top(cands.replace(live=jnp.asarray(live)), jnp.asarray(pot))
  top = np.argsort(-np.where(live, pot, -np.inf), kind="stable")[:4]
  np.testing.assert_array_equal(kept.prefixes, np.asarray(cands.prefixes)[top])
  np.testing.assert_array_equal(kept.potential, pot[top])
  assert kept.live.all() and int(kept.fixed) == 2
  assert (np.diff(np.asarray(kept.potential)) <= 0).all()  # best first


def test_keep_top_ties_and_unusable_candidates():
  search = PartialModelPool(NB201Space(), pool_size=3)
  cands = search.extend(search.init())  # 15 rows, 5 live: the choices of edge 0
  pot = jnp.array([1.0, 2.0, 2.0, -jnp.inf, jnp.nan] + [5.0] * 10)  # rows >= 5 are dead
  kept = search.keep_top(cands, pot)
  # Ties go to the lower row; -inf (no valid completion) and nan are never kept.
  assert np.asarray(kept.prefixes)[:, 0].tolist() == [1, 2, 0]
  kept = search.keep_top(cands, jnp.array([-jnp.inf, 3.0, -jnp.inf, -jnp.inf, 1.0] + [0.0] * 10))
  assert kept.live.tolist() == [True, True, False]
  assert np.asarray(kept.prefixes)[:, 0].tolist() == [1, 4, 0]


def test_sample_paths_respect_prefixes_of_live_members():
  space = NB201Space()
  search = PartialModelPool(space, pool_size=3)
  prefixes = np.array([[3, 1, 0, 0, 0, 0], [4, 4, 0, 0, 0, 0], [0, 2, 0, 0, 0, 0]], np.int32)
  pool = _pool_with(search, prefixes, 2).replace(live=jnp.array([True, True, False]))
  paths = np.asarray(jax.jit(search.sample_paths, static_argnums=2)(jax.random.key(0), pool, 400))
  heads = {tuple(p[:2]) for p in paths}
  assert heads == {(3, 1), (4, 4)}  # both live members drawn, never the dead one
  for j in range(2, 6):  # the free layers are uniform over all 5 ops
    counts = np.bincount(paths[:, j], minlength=5)
    assert counts.min() > 50, counts


def test_sampling_is_deterministic_and_keyed():
  search = PartialModelPool(NB201Space(), pool_size=2)
  pool = search.init()
  a = search.sample_paths(jax.random.key(1), pool, 16)
  b = jax.jit(search.sample_paths, static_argnums=2)(jax.random.key(1), pool, 16)
  c = search.sample_paths(jax.random.key(2), pool, 16)
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, c)


def test_potential_excludes_violators():
  acc = jnp.array([[0.9, 0.1, 0.5], [0.2, 0.4, 0.6], [0.7, 0.7, 0.7]])
  valid = jnp.array([[True, False, True], [True, True, True], [False, False, False]])
  np.testing.assert_allclose(pcnas_pool.potential(acc, valid), [0.7, 0.4, -np.inf], rtol=1e-6)


def test_completions_prefer_valid_paths():
  space = ConvLimitedNB201()
  prefix = np.array([[3, 3, 0, 0, 0, 0]], np.int32)  # two conv3x3 already: no more allowed
  plain = PartialModelPool(space, 1).complete(jax.random.key(0), jnp.asarray(prefix), 2, 64)
  tried = PartialModelPool(space, 1, max_tries=8).complete(
    jax.random.key(0), jnp.asarray(prefix), 2, 64
  )
  assert (plain[0, :, :2] == 3).all() and (tried[0, :, :2] == 3).all()
  assert not space.is_valid(plain).all()  # uniform completions do violate the limit
  assert space.is_valid(tried).all()  # 8 tries per path: valid ones first


def test_paired_completions_share_the_free_layers():
  search = PartialModelPool(NB201Space(), pool_size=2)
  prefixes = jnp.asarray([[1, 2, 0, 0, 0, 0], [4, 0, 0, 0, 0, 0]], jnp.int32)
  paths = np.asarray(search.complete(jax.random.key(3), prefixes, 2, 8, paired=True))
  assert (paths[:, :, :2] == np.asarray(prefixes)[:, None, :2]).all()
  np.testing.assert_array_equal(paths[0, :, 2:], paths[1, :, 2:])  # the same draws
  unpaired = np.asarray(search.complete(jax.random.key(3), prefixes, 2, 8))
  assert not np.array_equal(unpaired[0, :, 2:], unpaired[1, :, 2:])


def _shrink(search, fitness, key, completions=64):
  """The PC-NAS loop against a known fitness instead of a supernet."""

  @jax.jit
  def stage(pool, key):
    cands = search.extend(pool)
    paths = search.complete(key, cands.prefixes, cands.fixed, completions)
    acc = fitness(paths.reshape(-1, paths.shape[-1])).reshape(paths.shape[:2])
    return search.keep_top(cands, pcnas_pool.potential(acc, search.space.is_valid(paths)))

  pool = search.init()
  for i in range(search.num_layers):
    pool = stage(pool, jax.random.fold_in(key, i))
  return pool


def test_shrinking_finds_the_optimum_of_a_separable_fitness():
  # With sum_i w[i, op_i], a prefix's potential is its own part plus the same expected rest,
  # so (up to completion noise) the pool keeps the best prefixes and ends at the optimum.
  evaluate = additive_evaluator(seed=3)
  search = PartialModelPool(NB201Space(), pool_size=4)
  pool = _shrink(search, evaluate, jax.random.key(0))
  assert int(pool.fixed) == 6 and pool.live.all()
  best = np.asarray(pool.prefixes[0])
  assert float(evaluate(best[None])[0]) == pytest.approx(float(jnp.max(evaluate.values)))
  # At L the completions are the architectures themselves: potential = fitness.
  np.testing.assert_allclose(pool.potential, evaluate(pool.prefixes), rtol=1e-6)


def test_shrinking_on_a_space_with_uneven_choices_and_a_constraint():
  space = TinySpace(forbidden_first=2)  # enc[0] == 2 is over the "limit"
  fitness, _ = weighted_positions(space, seed=1)
  bonus = lambda enc: fitness(enc) + 100.0 * (enc[..., 0] == 2)  # the violators look best
  pool = _shrink(PartialModelPool(space, pool_size=2), bonus, jax.random.key(0))
  assert (np.asarray(pool.prefixes)[:, 0] != 2).all()


def test_bad_pool_settings_are_refused():
  with pytest.raises(ConfigError, match="pool_size"):
    PartialModelPool(NB201Space(), pool_size=0)
  with pytest.raises(ConfigError, match="max_tries"):
    PartialModelPool(NB201Space(), pool_size=2, max_tries=0)
