"""NAS-Bench-201 space: published parameter / FLOP counts, the Flax builds, vmap."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml.errors import ConfigError
from jaxml.spaces import NB201Space, module_costs
from jaxml.spaces.counting import init_shapes

# (arch string, params, MACs) at the benchmark's CIFAR-10 setting (C=16, N=5, 32x32, 10 classes).
# The NB201 API reports 'params' in MB = count / 1e6 and 'flops' in M = MACs / 1e6.
PUBLISHED = [
  # All-none cell: the minimum over the CIFAR-10 table, params 0.073306 MB / flops 7.78305 M
  # (min_max_values in EvoXBench's NB201 benchmark wrapper; also a NATS-Bench stats script).
  ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", 73306, 7783050),
  # All nor_conv_3x3: the maximum of the table, params 1.531546 MB / flops 220.11969 M (same).
  (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|"
    "nor_conv_3x3~2|",
    1531546,
    220119690,
  ),
  # Arch index 1: "FLOP=113.95 M, Params=0.802 MB" for cifar10 (D-X-Y/NATS-Bench issue #18,
  # query_info_str_by_arch(1)); issue #36 gives the exact {'flops': 113.95137, 'params':
  # 0.802426} for another cell with three nor_conv_3x3 edges.
  (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
    "skip_connect~2|",
    802426,
    113951370,
  ),
  # Arch index 0: flops 15.64737 M (NATS-Bench issue #24), params 0.129306 MB (NASLib's NB201
  # test fixture for index 0).
  (
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|"
    "skip_connect~2|",
    129306,
    15647370,
  ),
]
# The NB201 paper's "ResNet" cell (two stacked 3x3 convs + skip). No published count found; it
# is derived from the reference structure (AutoDL-Projects TinyNetwork / ResNetBasicblock /
# ReLUConvBN) and agrees with the linear fit through the published 0- / 3- / 6-conv3x3 values
# above: 73306 + 2 * (1531546 - 73306) / 6 = 559386.
RESNET = ("|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|", 559386)

FULL = NB201Space()
TINY = NB201Space(channels=4, cells_per_stage=1, input_size=8)


@pytest.mark.parametrize("arch,params,macs", PUBLISHED)
def test_published_counts(arch, params, macs):
  enc = FULL.from_string(arch)
  assert FULL.params(enc) == params
  assert FULL.flops(enc) == macs


def test_published_counts_of_the_built_network():
  # The Flax fixed build, traced at full size, has exactly the reference counts.
  x = jnp.zeros((1, 32, 32, 3))
  for arch, params, macs in PUBLISHED[1:3] + [(*RESNET, None)]:
    counted_macs, counted_params = module_costs(FULL.network(FULL.from_string(arch)), x)
    assert counted_params == params
    if macs is not None:
      assert counted_macs == macs
  assert FULL.params(FULL.from_string(RESNET[0])) == RESNET[1]


def test_analytic_costs_match_counted_costs_for_proxies(rand_encs):
  space = NB201Space(channels=8, cells_per_stage=2, num_classes=100, input_size=16)
  x = jnp.zeros((1, 16, 16, 3))
  for enc in rand_encs(space, 4):
    macs, params = module_costs(space.network(enc), x)
    assert (space.flops(enc), space.params(enc)) == (macs, params)
  # flops() overrides match a space built at the proxy size.
  enc = rand_encs(space, 1, seed=1)[0]
  assert space.flops(enc, input_size=32, channels=4) == dataclasses.replace(
    space, input_size=32, channels=4
  ).flops(enc)


def test_param_names_follow_reference_layout():
  enc = FULL.from_string(RESNET[0])
  shapes = init_shapes(TINY.network(enc), jnp.zeros((1, 8, 8, 3)))["params"]
  # layer0 cell, layer1 ResNet block (as the reference's `cells` list), ...
  assert sorted(shapes["layer0"]) == ["edge0_nor_conv_3x3", "edge2_nor_conv_3x3"]
  assert sorted(shapes["layer1"]) == ["conv_a", "conv_b", "shortcut"]
  assert shapes["layer1"]["shortcut"]["kernel"].shape == (1, 1, 4, 8)
  assert "layer2" in shapes and "layer5" not in shapes
  assert shapes["classifier"]["kernel"].shape == (16, 10)


def _encodings(rand_encs):
  # Random cells plus the corner cases: all none (zero nodes), every op once, and skip / pool /
  # conv edges leaving a zero node (the fixed build leaves out the first two).
  encs = rand_encs(TINY, 2, seed=2)
  corners = [[0] * 6, [0, 1, 2, 3, 4, 3], [0, 3, 4, 1, 3, 1], [0, 0, 1, 0, 4, 2]]
  return np.concatenate([encs, corners]).astype(np.int32)


def test_fixed_build_skips_pools_of_zero_nodes():
  # Node 1 is zero, so both average pools are of zeros: none is traced (XLA used to spend
  # seconds constant-folding each), while a pool of the input still is.
  x = jnp.zeros((2, 8, 8, 3))

  def pools(arch):
    net = TINY.network(TINY.from_string(arch))
    jaxpr = jax.make_jaxpr(lambda v: net.apply(v, x))(init_shapes(net, x))
    return str(jaxpr).count("reduce_window_sum")

  reductions = pools("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")  # the 2 ResNet blocks'
  assert pools("|none~0|+|none~0|avg_pool_3x3~1|+|none~0|none~1|avg_pool_3x3~2|") == reductions
  assert pools("|avg_pool_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|") > reductions


# train=False: CI's slow tier (keeps the README tier under 10 min on 2 cores)
@pytest.mark.parametrize("train", [pytest.param(False, marks=pytest.mark.slow), True])
def test_array_build_equals_fixed_build(fixed_matches_array, rand_encs, train):
  x = np.random.default_rng(3).normal(size=(4, 8, 8, 3)).astype(np.float32)
  fixed_matches_array(TINY, x, _encodings(rand_encs), train)


def test_vmap_over_stacked_weights(rand_vars, rand_encs, sub_tree, fixed_apply, jit_fast):
  arr = TINY.network()
  x = np.random.default_rng(4).normal(size=(4, 8, 8, 3)).astype(np.float32)
  encs = _encodings(rand_encs)[1:]
  shapes = init_shapes(arr, x, encs[0])
  copies = [rand_vars(shapes, seed) for seed in range(len(encs))]
  stacked = jax.tree.map(lambda *v: jnp.stack(v), *copies)
  ys = jit_fast(jax.vmap(arr.apply, in_axes=(0, None, 0)))(stacked, x, encs)
  for k, enc in enumerate(encs):
    fixed = TINY.network(enc)
    y = fixed_apply(fixed)(sub_tree(copies[k], init_shapes(fixed, x)), x)[0]  # eval output
    np.testing.assert_allclose(ys[k], y, rtol=2e-4, atol=2e-5)


def test_network_call_errors(rand_vars):
  arr, x = TINY.network(), jnp.zeros((1, 8, 8, 3))
  enc = np.zeros(6, np.int32)
  v = rand_vars(init_shapes(arr, x, enc))
  with pytest.raises(ConfigError, match="needs an encoding"):
    arr.apply(v, x)
  with pytest.raises(ConfigError, match=r"shape \(6,\)"):
    arr.apply(v, x, np.zeros((2, 6), np.int32))
  with pytest.raises(ConfigError, match="invalid"):
    arr.apply(v, x, np.array([0, 0, 5, 0, 0, 0], np.int32))
  with pytest.raises(ConfigError, match="fixed build"):
    TINY.network(enc).apply(v, x, enc)
  with pytest.raises(ConfigError):
    TINY.network([0, 0, 7, 0, 0, 0])
  with pytest.raises(ConfigError, match="multiple of 4"):
    NB201Space(input_size=30)


def test_strings_and_index():
  arch = PUBLISHED[2][0]
  enc = FULL.from_string(arch)
  np.testing.assert_array_equal(enc, [3, 3, 4, 1, 3, 1])
  assert FULL.to_string(enc) == arch
  assert FULL.index(enc) == 3 * 5**5 + 3 * 5**4 + 4 * 5**3 + 1 * 25 + 3 * 5 + 1
  with pytest.raises(ConfigError):
    FULL.from_string("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|")
