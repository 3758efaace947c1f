"""The SPOS / DetNAS ShuffleNetV2 choice-block space: costs, builds, gradients, constraints."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml.errors import ConfigError
from jaxml.models import get_model
from jaxml.spaces import ShuffleNetSPOSSpace
from jaxml.spaces.counting import module_costs

# A CPU-sized member of the space: one block per stage, 1/8 widths, 8 px.
TINY = dict(width=0.125, stage_blocks=(1, 1, 1, 1), input_size=8)
SPOS_RESULT = "(2,1,0,1,2,0,2,0,2,0,2,3,0,0,0,0,3,2,3,3)"  # SPOS README: 323 M FLOPs, 3.5 M params


def random_variables(module, x, **kwargs):
  """Variables of `module` filled from numpy: its shapes by tracing only, since compiling the
  supernet's ~250 threefry initialisers costs minutes on a loaded 2-core CPU."""
  shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), x, **kwargs))
  rng = np.random.default_rng(0)
  draw = lambda s: jnp.asarray(rng.normal(0.0, 0.5, s.shape), s.dtype)  # noqa: E731
  return jax.tree.map(draw, shapes)


@pytest.fixture(scope="module")
def tiny():
  space = ShuffleNetSPOSSpace(**TINY)
  x = jax.random.normal(jax.random.key(0), (4, 8, 8, 3))
  enc = np.asarray(space.sample(jax.random.key(1), 3))
  variables = random_variables(space.network(), x, encoding=jnp.asarray(enc[0]))
  variables["batch_stats"] = jax.tree.map(jnp.abs, variables["batch_stats"])  # variances > 0
  return space, x, enc, variables


def test_published_architecture_costs():
  """Guo et al.'s searched network at 224 px / 1000 classes: 323 M FLOPs, 3.5 M params."""
  space = ShuffleNetSPOSSpace(num_classes=1000, input_size=224, stem="imagenet")
  enc = space.from_string(SPOS_RESULT)
  assert space.to_string(enc) == SPOS_RESULT
  assert abs(space.flops(enc) / 323e6 - 1) < 0.005
  assert abs(space.params(enc) / 3.5e6 - 1) < 0.02
  assert space.encoding_length == 20 and space.size == 4**20
  assert ShuffleNetSPOSSpace(table="detnas_large").encoding_length == 40


def test_costs_are_table_sums_equal_to_the_traced_fixed_network(tiny):
  space, _, enc, _ = tiny
  x = jax.ShapeDtypeStruct((1, 8, 8, 3), jnp.float32)
  traced = [module_costs(space.network(e), x) for e in enc]
  np.testing.assert_array_equal(space.flops(enc), [m for m, _ in traced])
  np.testing.assert_array_equal(space.params(enc), [p for _, p in traced])
  np.testing.assert_allclose(jax.jit(space.macs_of)(enc), space.flops(enc), rtol=1e-6)


def test_array_build_equals_fixed_build_with_the_same_weights(tiny):
  space, x, enc, variables = tiny
  array = jax.jit(lambda v, e: space.network().apply(v, x, encoding=e))
  for e in enc:
    fixed = space.network(e).apply(variables, x)
    np.testing.assert_allclose(array(variables, jnp.asarray(e)), fixed, rtol=1e-4, atol=1e-5)


@pytest.mark.slow  # >20 s on 2 cores: keeps the README tier under 10 min; CI's slow tier runs it
def test_only_the_chosen_blocks_get_gradient(tiny, jit_fast):
  space, x, enc, variables = tiny
  net = space.network()

  def loss(params):
    out, _ = net.apply(
      {"params": params, "batch_stats": variables["batch_stats"]},
      x,
      encoding=jnp.asarray(enc[0]),
      train=True,
      mutable=["batch_stats"],
    )
    return jnp.sum(out**2)

  # XLA:CPU's cheap-compile options: an unchosen block's gradient is exactly zero either way
  # (it is cut off by the switch, not by an optimisation).
  grads = jit_fast(jax.grad(loss))(variables["params"])
  for i, chosen in enumerate(enc[0]):
    for name, sub in grads[f"block{i}"].items():
      norm = sum(float(jnp.abs(g).sum()) for g in jax.tree.leaves(sub))
      assert (norm > 0) == (name == space.OPS[chosen]), (i, name, norm)


def test_flops_limit_is_the_validity_test():
  space = ShuffleNetSPOSSpace(**TINY)
  enc = np.asarray(space.enumerate())
  macs = space.flops(enc)
  limit = int(np.median(macs))
  limited = ShuffleNetSPOSSpace(**TINY, flops_limit=limit)
  np.testing.assert_array_equal(jax.jit(limited.is_valid)(enc), macs <= limit)
  assert bool(space.is_valid(enc).all())


def test_registry_builds_the_space_network():
  net = get_model("shufflenet_spos", 10, width=0.125, stage_blocks=(1, 1, 1, 1), arch="(3,2,1,0)")
  assert net.arch == (3, 2, 1, 0) and net.widths == (4, 8, 20, 40, 80, 128)


@pytest.mark.parametrize(
  "kwargs, match",
  [
    (dict(table="big"), "table"),
    (dict(stem="tpu"), "stem"),
    (dict(width=0), "width"),
    (dict(stage_blocks=(1, 1, 0, 1)), "stage_blocks"),
    (dict(stage_blocks=(1, 1)), "stage_blocks"),
    (dict(flops_limit=-1), "flops_limit"),
    (dict(input_size=12), "multiple of 8"),
    (dict(stem="imagenet", input_size=16), "multiple of 32"),
  ],
)
def test_bad_space_config_is_refused(kwargs, match):
  with pytest.raises(ConfigError, match=match):
    ShuffleNetSPOSSpace(**kwargs)


@pytest.mark.parametrize("text", ["(4,0,0,0)", "1,2", "abc", "(1,-1,0,0)"])
def test_bad_architecture_string_is_refused(text):
  with pytest.raises(ConfigError):
    ShuffleNetSPOSSpace(**TINY).from_string(text)
