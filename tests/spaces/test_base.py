"""Interface conformance of every search space: encodings, validity, sampling and variation."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml.errors import ConfigError
from jaxml.spaces import DARTSSpace, EcoNASSpace, NB201Space, SearchSpace
from jaxml.spaces import nb201_encoding as E

SPACES = [NB201Space(), DARTSSpace(), EcoNASSpace()]
IDS = ["nb201", "darts", "econas"]
LENGTHS = {"nb201": 6, "darts": 32, "econas": 40}


@pytest.mark.parametrize("space,name", zip(SPACES, IDS, strict=True), ids=IDS)
def test_interface_shape(space, name):
  assert isinstance(space, SearchSpace)
  assert space.encoding_length == LENGTHS[name]
  bounds = space.bounds()
  assert bounds.shape == (LENGTHS[name],) and bounds.dtype == np.int32 and (bounds >= 1).all()
  assert space.size == int(np.prod(bounds.astype(object)))
  hash(space)  # frozen dataclasses: usable as static jit arguments
  with pytest.raises(dataclasses.FrozenInstanceError):
    space.channels = 3


def test_sizes_match_papers():
  assert NB201Space().size == 15625
  # DARTS: per cell, node b has ((b + 2) * 8)^2 choices for its two slots.
  assert DARTSSpace().size == np.prod([((b + 2) * 8) ** 2 for b in range(4)], dtype=object) ** 2
  assert EcoNASSpace().size == np.prod([((b + 2) * 13) ** 2 for b in range(5)], dtype=object) ** 2


@functools.lru_cache
def _generations(name: str) -> dict:
  """Samples and variations for 10 seeds, from ONE jitted function per space.

  (Each distinct jitted random op costs a threefry compile; one program keeps the test fast.)
  """
  space = SPACES[IDS.index(name)]

  def generation(key):
    ks = jax.random.split(key, 6)
    a, b = space.sample(ks[0], 32), space.sample(ks[1], 32)
    return {
      "a": a,
      "b": b,
      "mutated": space.mutate(ks[2], a, 0.3),
      "child": space.crossover(ks[3], a, b),
      "one": space.mutate_one(ks[4], a),
      "p0": space.mutate(ks[5], a, 0.0),
      "p1": space.mutate(ks[5], a, 1.0),
      # Per-encoding calls vmapped over keys and encodings.
      "vmut": jax.vmap(lambda k, e: space.mutate(k, e, 0.5))(jax.random.split(ks[5], 32), a),
      "vcross": jax.vmap(space.crossover)(jax.random.split(ks[4], 32), a, b),
    }

  step = jax.jit(generation)
  outs = [step(jax.random.key(seed)) for seed in range(10)]
  return {k: np.stack([np.asarray(o[k]) for o in outs]) for k in outs[0]}


@pytest.mark.parametrize("name", IDS)
def test_sample_mutate_crossover_valid_over_seeds(name):
  space, g = SPACES[IDS.index(name)], _generations(name)
  assert g["a"].shape == (10, 32, space.encoding_length) and g["a"].dtype == np.int32
  for key in ("a", "b", "mutated", "child", "one", "p1", "vmut", "vcross"):
    space.validate(g[key])
  for child in (g["child"], g["vcross"]):
    assert ((child == g["a"]) | (child == g["b"])).all()
  assert ((g["one"] != g["a"]).sum(-1) == 1).all()
  assert (g["mutated"] != g["a"]).any() and (g["vmut"] != g["a"]).any()


@pytest.mark.parametrize("name", IDS)
def test_mutate_probability_extremes(name):
  space, g = SPACES[IDS.index(name)], _generations(name)
  np.testing.assert_array_equal(g["p0"], g["a"])
  # prob 1: every position with more than one choice changes.
  assert ((g["p1"] != g["a"]) == (space.bounds() > 1)).all()


@pytest.mark.parametrize("name", IDS)
def test_sample_covers_every_choice(name):
  space, g = SPACES[IDS.index(name)], _generations(name)
  enc = g["a"].reshape(-1, space.encoding_length)
  for pos, bound in enumerate(space.bounds()):
    assert set(np.unique(enc[:, pos])) == set(range(bound)), pos


@pytest.mark.parametrize("name", IDS)
def test_validate_errors(name):
  space, good = SPACES[IDS.index(name)], _generations(name)["a"][0, 0]
  space.validate(good)
  with pytest.raises(ConfigError, match="length|entries"):
    space.validate(good[:-1])
  bad = good.copy()
  bad[-1] = space.bounds()[-1]  # one past the last op
  with pytest.raises(ConfigError):
    space.validate(bad)
  bad[-1] = -1
  with pytest.raises(ConfigError):
    space.validate(bad)
  with pytest.raises(ConfigError, match="integer"):
    space.validate(good.astype(np.float32))
  with pytest.raises(ConfigError):
    space.as_arch(np.stack([good, good]))  # a batch is not one architecture
  assert space.as_arch(good) == tuple(int(v) for v in good)


def test_darts_input_index_validity_is_positional():
  space = DARTSSpace()
  enc = np.zeros(32, np.int32)
  space.validate(enc)
  enc[0] = 2  # node 0, slot 0 may only read the two cell inputs
  with pytest.raises(ConfigError, match="normal cell, node 0, slot 0, input index"):
    space.validate(enc)
  enc[0] = 0
  enc[4 * 4 * 2 - 2] = 5  # reduce cell, node 3, slot 1: inputs 0..4
  with pytest.raises(ConfigError, match="reduce cell, node 3, slot 1, input index"):
    space.validate(enc)
  enc[30] = 4
  space.validate(enc)


def test_enumerate():
  all_nb201 = NB201Space().enumerate()
  assert all_nb201.shape == (15625, 6)
  assert len({tuple(r) for r in all_nb201}) == 15625
  for space in SPACES[1:]:
    with pytest.raises(ConfigError, match="too many"):
      space.enumerate()


def test_generic_enumerate_small_space():
  # The generic mixed-radix enumeration (NB201 uses its own), on a space with tiny bounds.
  class Tiny(NB201Space):
    def bounds(self):
      return np.array([2, 3], np.int32)

  grid = SearchSpace.enumerate(Tiny())
  np.testing.assert_array_equal(grid, [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]])


@pytest.mark.parametrize("name", IDS)
def test_string_round_trip(name):
  space = SPACES[IDS.index(name)]
  for enc in _generations(name)["mutated"][0, :10]:
    s = space.to_string(enc)
    np.testing.assert_array_equal(space.from_string(s), enc)


@pytest.mark.parametrize("name", IDS)
def test_costs_batch_and_errors(name):
  space, enc = SPACES[IDS.index(name)], _generations(name)["b"][0, :3]
  flops, params = space.flops(enc), space.params(enc)
  assert flops.shape == params.shape == (3,)
  assert flops[0] == space.flops(enc[0]) and params[2] == space.params(enc[2])
  # Smaller proxies cost less; parameters do not depend on the resolution.
  assert space.flops(enc[0], input_size=16) < flops[0]
  assert space.params(enc[0], channels=8) < params[0]
  with pytest.raises(ConfigError):
    space.flops(enc[0][:-1])


@pytest.mark.parametrize("cls", [NB201Space, DARTSSpace, EcoNASSpace])
def test_bad_config(cls):
  with pytest.raises(ConfigError, match="channels"):
    cls(channels=0)
  with pytest.raises(ConfigError):
    cls(input_size=2.5)


def test_uid_is_the_enumeration_index_of_small_spaces():
  grid = NB201Space().enumerate()
  uid = np.asarray(NB201Space().uid(grid))
  np.testing.assert_array_equal(uid, np.arange(15625))
  np.testing.assert_array_equal(uid, E.encoding_to_index(grid))

  class Tiny(NB201Space):
    def bounds(self):
      return np.array([2, 3], np.int32)

  tiny = Tiny()
  np.testing.assert_array_equal(tiny.uid(SearchSpace.enumerate(tiny)), np.arange(6))


@pytest.mark.parametrize("name", IDS[1:])
def test_uid_hashes_large_spaces(name):
  space, g = SPACES[IDS.index(name)], _generations(name)
  enc = g["a"].reshape(-1, space.encoding_length)  # 320 random encodings
  uid = np.asarray(jax.jit(space.uid)(enc))
  assert uid.dtype == np.int32 and (uid >= 0).all()
  assert len(set(uid.tolist())) == len({tuple(r) for r in enc.tolist()})  # no collision here
  np.testing.assert_array_equal(uid, np.asarray(space.uid(enc[::-1]))[::-1])  # per row
  assert (np.asarray(space.uid(g["one"].reshape(enc.shape))) != uid).all()  # one change moves it


@pytest.mark.parametrize("space,name", zip(SPACES, IDS, strict=True), ids=IDS)
def test_is_valid_defaults_to_all_true(space, name):
  enc = _generations(name)["a"][0]
  valid = space.is_valid(enc)
  assert valid.shape == (32,) and valid.dtype == bool and bool(valid.all())


def test_mutate_one_picks_positions_and_other_values_uniformly():
  space = EcoNASSpace()
  zeros = jnp.zeros((6000, space.encoding_length), jnp.int32)
  moved = np.asarray(jax.jit(space.mutate_one)(jax.random.key(0), zeros))
  pos = np.argmax(moved != 0, axis=1)
  counts = np.bincount(pos, minlength=space.encoding_length)
  assert counts.min() > 0.6 * 6000 / space.encoding_length  # expected 150 each
  at_op = space.bounds()[pos] == 13  # op positions: 12 other values each (~3,000 draws)
  op = moved[np.arange(moved.shape[0]), pos][at_op]
  np.testing.assert_allclose(np.bincount(op, minlength=13)[1:] / op.size, 1 / 12, atol=0.02)
