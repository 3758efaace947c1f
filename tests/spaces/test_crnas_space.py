"""CRNAS spaces (`jaxml.spaces.crnas`): eligible allocations keep the block total and the FLOPs,
analytic MACs / params against the jaxpr counter, the supernets against the plain ResNet with the
same weights, dilation choices keep shapes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxml.models
from jaxml.errors import ConfigError
from jaxml.spaces import count_params
from jaxml.spaces.crnas import BASELINES, BLOCK_OF, CRDilationSpace, CRStageSpace

RBG_KEY = jax.random.key(0, impl="rbg")  # compiles a ResNet init several times faster
# (backbone, supernet blocks per stage T_i, input size, stem): the searched settings.
SETTINGS = [
  ("resnet18", (5, 5, 5, 5), 32, "cifar"),
  ("resnet18", (5, 5, 5, 5), 224, "imagenet"),
  ("resnet50", (6, 8, 10, 6), 32, "cifar"),
  ("resnet50", (6, 8, 10, 6), 224, "imagenet"),
  ("resnet101", (10, 10, 30, 10), 224, "imagenet"),
]


def stage_space(backbone, max_blocks, size, stem, width=64):
  return CRStageSpace(
    width=width,
    block=BLOCK_OF[backbone],
    input_size=size,
    stem=stem,
    baseline=BASELINES[backbone],
    max_blocks=max_blocks,
  )


@pytest.mark.parametrize("backbone,max_blocks,size,stem", SETTINGS)
def test_every_eligible_allocation_keeps_the_block_total_and_the_flops(
  backbone, max_blocks, size, stem
):
  space = stage_space(backbone, max_blocks, size, stem)
  eligible = space.eligible()
  taus = eligible + 1
  assert len(eligible) > 1 and (taus >= 1).all()
  assert (taus.sum(1) == sum(BASELINES[backbone])).all()
  base = space.flops(space.encode(BASELINES[backbone]))
  # The resolution halves exactly in these settings: equal to the MAC, not just within 1 %.
  np.testing.assert_array_equal(space.flops(eligible), base)
  assert (space.params(eligible) != space.params(space.encode(BASELINES[backbone]))).any()
  # The jittable test agrees with the host enumeration on the whole grid.
  grid = space.enumerate()
  valid = np.asarray(jax.jit(space.is_valid)(jnp.asarray(grid)))
  want = {tuple(e) for e in eligible}
  assert {tuple(g) for g in grid[valid]} == want
  samples = np.asarray(space.sample(jax.random.key(0), 256))
  assert {tuple(s) for s in samples} <= want


def test_inexact_resolution_keeps_flops_within_the_tolerance():
  """28 px: 28 -> 14 -> 7 -> 4, so a stage-4 block is not a stage-3 block's cost; eligibility
  then also asks for MACs within 1 % of the baseline (ResNet-101: 300 of its 1,000 sums)."""
  space = stage_space("resnet101", (10, 10, 30, 10), 28, "cifar")
  eligible = space.eligible()
  base = space.flops(space.encode((3, 4, 23, 3)))
  ratio = space.flops(eligible) / base
  assert np.abs(ratio - 1).max() <= 0.01 and np.abs(ratio - 1).max() > 0
  loose = CRStageSpace(**{**space.__dict__, "flops_tolerance": 1.0})
  assert len(loose.eligible()) > len(eligible)


@pytest.mark.parametrize("block", ["basic", "bottleneck"])
@pytest.mark.parametrize("stem,size", [("cifar", 8), ("imagenet", 32)])
def test_analytic_macs_and_params_match_the_counters(block, stem, size, costs_match_counters):
  space = CRStageSpace(width=2, block=block, input_size=size, stem=stem, max_blocks=(3, 3, 3, 3))
  x = jnp.zeros((1, size, size, 3))
  for tau in ((2, 2, 2, 2), (1, 1, 3, 3)):
    costs_match_counters(space, space.encode(tau), x)


@pytest.fixture(scope="module")
def stage_supernet():
  space = CRStageSpace(width=2, input_size=8, baseline=(1, 1, 2, 1), max_blocks=(2, 2, 3, 2))
  net = space.network()
  x = jax.random.normal(jax.random.key(1), (4, 8, 8, 3))
  variables = jax.jit(net.init)(RBG_KEY, x[:1], encoding=jnp.zeros(4, jnp.int32))
  # BN statistics as after training, so the comparison sees them.
  variables = {
    **variables,
    "batch_stats": jax.tree.map(lambda s: s + 0.2, variables["batch_stats"]),
  }
  apply = jax.jit(
    lambda v, x, e, train: net.apply(v, x, encoding=e, train=train, mutable=["batch_stats"]),
    static_argnums=3,
  )
  return space, variables, x, apply


# train=False: CI's slow tier (keeps the README tier under 10 min on 2 cores)
@pytest.mark.parametrize("train", [pytest.param(False, marks=pytest.mark.slow), True])
def test_stage_supernet_with_an_allocation_equals_the_plain_resnet(stage_supernet, train):
  space, variables, x, apply = stage_supernet
  for tau in ((2, 1, 1, 1), (1, 2, 3, 2)):
    enc = space.encode(tau)
    got, got_stats = apply(variables, x, jnp.asarray(enc), train)
    plain = jaxml.models.get_model("crnas_resnet", 10, width=2, stage_sizes=tau)
    want, want_stats = jax.jit(
      lambda v, x, p=plain: p.apply(v, x, train=train, mutable=["batch_stats"])
    )(variables, x)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    if train:  # the chosen blocks' statistics moved exactly as in the plain network
      names = jax.eval_shape(lambda p=plain: p.init(jax.random.key(0), x, train=False))
      for name in names["batch_stats"]:
        stats = want_stats["batch_stats"][name]
        np.testing.assert_allclose(
          jax.tree.leaves(got_stats["batch_stats"][name]), jax.tree.leaves(stats), rtol=1e-6
        )


@pytest.mark.parametrize(
  "block,encodings",
  [
    # basic: CI's slow tier (keeps the README tier under 10 min on 2 cores)
    pytest.param("basic", ([0, 1, 2, 2, 1], [2, 2, 2, 2, 2]), marks=pytest.mark.slow),
    ("bottleneck", ([2, 0, 1, 2, 1],)),
  ],
)
def test_dilation_supernet_keeps_shapes_and_equals_the_dilated_resnet(block, encodings):
  space = CRDilationSpace(width=2, block=block, input_size=8, allocation=(1, 1, 2, 1))
  net = space.network()
  x = jax.random.normal(jax.random.key(1), (2, 8, 8, 3))
  variables = jax.jit(net.init)(RBG_KEY, x[:1], encoding=jnp.zeros(5, jnp.int32))
  assert count_params(variables["params"]) == space.params(np.zeros(5, np.int32))
  apply = jax.jit(lambda v, e: net.apply(v, x, encoding=e))
  for enc in encodings:
    dil = space.dilation_values(enc)
    plain = jaxml.models.get_model(
      "crnas_resnet", 10, width=2, block=block, stage_sizes=(1, 1, 2, 1), dilations=dil
    )
    # Every intermediate shape is the undilated one: same variables tree, same logits shape.
    shapes = jax.eval_shape(lambda p=plain: p.init(jax.random.key(0), x, train=False))
    assert jax.tree.map(lambda s: s.shape, shapes) == jax.tree.map(lambda a: a.shape, variables)
    want = jax.jit(lambda v, p=plain: p.apply(v, x, train=False))(variables)
    np.testing.assert_allclose(apply(variables, jnp.asarray(enc, jnp.int32)), want, atol=1e-6)
  assert space.flops(np.array([[0] * 5, [2] * 5])).tolist() == [space.flops([1] * 5)] * 2


def test_notation_sampling_and_refusals():
  space = CRStageSpace(width=2, input_size=8)
  assert space.to_string(space.from_string("1-3-3-1")) == "1-3-3-1"
  branches = np.asarray(space.sample_branches(jax.random.key(0), 512)) + 1
  assert branches.min() == 1 and branches.max() == 5 and (branches.sum(1) != 8).any()
  dil = CRDilationSpace(width=2, input_size=8, allocation=(1, 3, 2, 2))
  assert dil.to_string(dil.from_string("1|2,3,1|2,3|3,2")) == "1|2,3,1|2,3|3,2"
  for bad in ("1-2-3", "0-3-3-2", "a-b"):
    with pytest.raises(ConfigError):
      space.from_string(bad)
  with pytest.raises(ConfigError, match="do not match"):
    dil.from_string("1|2|3|1")
  with pytest.raises(ConfigError, match="exceeds"):
    CRStageSpace(baseline=(3, 4, 6, 3), max_blocks=(5, 5, 5, 5))
  with pytest.raises(ConfigError, match="block"):
    CRStageSpace(block="wide")
