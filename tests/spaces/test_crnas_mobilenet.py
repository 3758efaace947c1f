"""CRNAS MobileNetV2 spaces (`jaxml.spaces.crnas_mobilenet`): eligible allocations keep the MACs
within 1 % (no block total), analytic MACs / params against the counters, the supernets against
the plain MobileNetV2 with the same weights, dilation choices keep shapes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxml.models
from jaxml.errors import ConfigError
from jaxml.models.mobilenet import MobileNetV2
from jaxml.spaces import count_macs, count_params
from jaxml.spaces.crnas_mobilenet import (
  MOBILENET_BASELINE,
  CRMobileDilationSpace,
  CRMobileStageSpace,
)

TINY = dict(width_mult=0.1, input_size=8)  # every channel count rounds up to 8 (96: 16)


def trained_like(net, x, encoding):
  """Random weights and BN statistics of `net`'s variables (shapes from eval_shape: no init
  compile). At init the fan-out-scaled depthwise kernels shrink the logits to ~1e-7, where any
  two networks would agree to a tight atol."""
  shapes = jax.eval_shape(lambda: net.init(jax.random.key(0), x, encoding=encoding))
  rng = np.random.default_rng(0)
  params = jax.tree.map(lambda s: 0.5 * rng.standard_normal(s.shape, np.float32), shapes["params"])
  stats = jax.tree.map(lambda s: 1 + 0.2 * rng.random(s.shape, np.float32), shapes["batch_stats"])
  return {"params": params, "batch_stats": stats}


@pytest.mark.parametrize(
  "width_mult,size,stem,max_blocks",
  [(1.0, 32, "cifar", (4, 5, 6, 5, 5)), (0.25, 16, "cifar", (3, 4, 5, 4, 4)),
   (1.0, 224, "imagenet", (4, 5, 6, 5, 5))],
)  # fmt: skip
def test_every_eligible_allocation_is_within_one_percent_of_the_baseline_macs(
  width_mult, size, stem, max_blocks
):
  space = CRMobileStageSpace(
    width_mult=width_mult, input_size=size, stem=stem, max_blocks=max_blocks
  )
  eligible = space.eligible()
  base = space.flops(space.encode(MOBILENET_BASELINE))
  ratio = space.flops(eligible) / base
  assert len(eligible) > 10 and np.abs(ratio - 1).max() <= 0.01
  assert (ratio != 1).any()  # regular blocks differ between groups: not all exactly equal
  assert len(set((eligible + 1).sum(1))) > 1  # no block total is imposed
  grid = space.enumerate()
  all_ratio = space.flops(grid) / base
  np.testing.assert_array_equal(
    {tuple(g) for g in grid[np.abs(all_ratio - 1) <= 0.01]}, {tuple(e) for e in eligible}
  )
  valid = np.asarray(jax.jit(space.is_valid)(jnp.asarray(grid)))
  assert {tuple(g) for g in grid[valid]} == {tuple(e) for e in eligible}
  samples = np.asarray(space.sample(jax.random.key(0), 256))
  assert {tuple(s) for s in samples} <= {tuple(e) for e in eligible}


@pytest.mark.parametrize("stem,size", [("cifar", 8), ("imagenet", 32)])
def test_analytic_macs_and_params_match_the_counters(stem, size, costs_match_counters):
  space = CRMobileStageSpace(width_mult=0.1, input_size=size, stem=stem, max_blocks=(3, 3, 5, 3, 3))
  x = jnp.zeros((1, size, size, 3))
  for tau in (MOBILENET_BASELINE, (1, 1, 1, 1, 1), (3, 2, 5, 1, 3)):
    costs_match_counters(space, space.encode(tau), x)
  dilated = MobileNetV2(10, width_mult=0.1, stem=stem, dilations=(3,) * 17)
  assert count_macs(dilated, x, train=False) == space.flops(space.encode(MOBILENET_BASELINE))


@pytest.fixture(scope="module")
def stage_supernet():
  space = CRMobileStageSpace(**TINY, baseline=(1, 1, 2, 1, 1), max_blocks=(2, 2, 3, 2, 2))
  net = space.network()
  x = jax.random.normal(jax.random.key(1), (4, 8, 8, 3))
  variables = trained_like(net, x[:1], jnp.zeros(5, jnp.int32))
  return space, variables, x


# train=False: CI's slow tier (keeps the README tier under 10 min on 2 cores)
@pytest.mark.parametrize("train", [pytest.param(False, marks=pytest.mark.slow), True])
def test_stage_supernet_with_an_allocation_equals_the_plain_mobilenet(stage_supernet, train):
  space, variables, x = stage_supernet
  net = space.network()
  for tau in ((2, 1, 1, 1, 2), (1, 2, 3, 2, 1)):
    got, got_stats = net.apply(
      variables, x, encoding=space.encode(tau), train=train, mutable=["batch_stats"]
    )
    plain = jaxml.models.get_model("mobilenetv2", 10, width_mult=0.1, blocks=(1, *tau, 1))
    want, want_stats = plain.apply(variables, x, train=train, mutable=["batch_stats"])
    assert np.abs(want).max() > 0.1
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    if train:  # the chosen blocks' statistics moved exactly as in the plain network
      names = jax.eval_shape(lambda p=plain: p.init(jax.random.key(0), x, train=False))
      for name in names["batch_stats"]:  # apply passes the supernet's other blocks through
        stats = want_stats["batch_stats"][name]
        jax.tree.map(
          lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
          got_stats["batch_stats"][name],
          stats,
        )


def test_dilation_supernet_keeps_shapes_and_equals_the_dilated_mobilenet():
  space = CRMobileDilationSpace(**TINY, allocation=(1, 1, 2, 1, 1))
  assert space.encoding_length == 8  # groups 1 and 7 are searched too
  net = space.network()
  x = jax.random.normal(jax.random.key(1), (2, 8, 8, 3))
  variables = trained_like(net, x[:1], jnp.zeros(8, jnp.int32))
  assert count_params(variables["params"]) == space.params(np.zeros(8, np.int32))
  for enc in ([0, 1, 2, 2, 1, 0, 2, 1], [2] * 8):
    dil = space.dilation_values(enc)
    plain = jaxml.models.get_model(
      "mobilenetv2", 10, width_mult=0.1, blocks=(1, 1, 1, 2, 1, 1, 1), dilations=dil
    )
    # Every intermediate shape is the undilated one: same variables tree, same logits shape.
    shapes = jax.eval_shape(lambda p=plain: p.init(jax.random.key(0), x, train=False))
    assert jax.tree.map(lambda s: s.shape, shapes) == jax.tree.map(lambda a: a.shape, variables)
    want = plain.apply(variables, x, train=False)
    got = net.apply(variables, x, encoding=jnp.asarray(enc, jnp.int32))
    assert np.abs(want).max() > 0.1
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  undilated = net.apply(variables, x, encoding=jnp.zeros(8, jnp.int32))
  assert np.abs(undilated - want).max() > 0.01  # the dilation matters


def test_notation_and_refusals():
  space = CRMobileStageSpace(**TINY)
  assert space.to_string(space.from_string("1-4-4-3-3")) == "1-4-4-3-3"
  dil = CRMobileDilationSpace(**TINY, allocation=(1, 2, 1, 1, 1))
  assert dil.to_string(dil.from_string("1|2|3,1|2|3|1|2")) == "1|2|3,1|2|3|1|2"
  for bad in ("2-2-2-2", "0-3-4-3-3", "5-3-4-3-3"):
    with pytest.raises(ConfigError):
      space.from_string(bad)
  with pytest.raises(ConfigError, match="channels"):
    space.flops(space.encode(MOBILENET_BASELINE), channels=8)
  with pytest.raises(ConfigError, match="5 integers"):
    CRMobileStageSpace(baseline=(2, 2, 2, 2))
  with pytest.raises(ConfigError, match="width_mult"):
    CRMobileStageSpace(width_mult=0.0)
