"""EcoNAS (NASNet-style) space: op list, encoding, costs, array build vs fixed build."""

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest

from jaxml.spaces import EcoNASSpace, module_costs
from jaxml.spaces.econas import OPS

# The array-vs-fixed test uses one block per cell (5 cells: N, R, N, R, N): every op runs at
# stride 1 and 2, and the array build (13 candidate ops per slot) compiles in seconds. Multi-node
# input selection is the same `NASNetCell` code the DARTS test checks with B = 4.
TINY = EcoNASSpace(channels=4, cells_per_stage=1, input_size=8, num_nodes=1)


def test_ops_are_the_nasnet_list():
  # EcoNAS / NASNet: 3x3 avg pool; 3x3, 5x5, 7x7 max pool; identity; 1x1, 3x3 conv; 3x3, 5x5,
  # 7x7 separable conv; 3x3 dilated conv; 1x3-then-3x1 and 1x7-then-7x1 conv.
  assert len(OPS) == 13 and len(set(OPS)) == 13
  assert EcoNASSpace.OPS == OPS
  space = EcoNASSpace()
  assert space.encoding_length == 2 * 5 * 2 * 2
  np.testing.assert_array_equal(space.bounds()[:4], [2, 13, 2, 13])
  np.testing.assert_array_equal(space.bounds()[36:], [6, 13, 6, 13])
  assert space.layout() == (False,) * 6 + (True,) + (False,) * 6 + (True,) + (False,) * 6


def test_proxies_scale_costs(rand_encs):
  space = EcoNASSpace()
  enc = rand_encs(space, 1, seed=3)[0]
  proxy = dataclasses.replace(space, channels=9, input_size=16, cells_per_stage=2)
  assert proxy.flops(enc) < space.flops(enc, input_size=16) < space.flops(enc)
  assert space.params(enc, channels=9) == dataclasses.replace(space, channels=9).params(enc)


def test_analytic_costs_match_counted_costs(rand_encs):
  space = EcoNASSpace(channels=6, cells_per_stage=1, input_size=12, num_classes=7)
  x = jnp.zeros((1, 12, 12, 3))
  for enc in rand_encs(space, 2, seed=4):
    assert module_costs(space.network(enc), x) == (space.flops(enc), space.params(enc))


def test_string_round_trip_uses_concat_of_all_blocks(rand_encs):
  space = EcoNASSpace()
  enc = rand_encs(space, 1, seed=6)[0]
  s = space.to_string(enc)
  assert s.startswith("Genotype(normal=[(") and s.count("_concat=range(2, 7)") == 2
  np.testing.assert_array_equal(space.from_string(s), enc)


# train=False: CI's slow tier (keeps the README tier under 10 min on 2 cores)
@pytest.mark.parametrize("train", [pytest.param(False, marks=pytest.mark.slow), True])
def test_array_build_equals_fixed_build(fixed_matches_array, rand_encs, train):
  x = np.random.default_rng(1).normal(size=(4, 8, 8, 3)).astype(np.float32)
  fixed_matches_array(TINY, x, rand_encs(TINY, 2, seed=2), train)
