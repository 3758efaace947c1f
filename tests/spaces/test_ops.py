"""Cell operations: output shapes, analytic costs vs counted costs, reference semantics."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml.spaces import module_costs
from jaxml.spaces.counting import init_shapes
from jaxml.spaces.ops import (
  CELL_OPS,
  FactorizedReduce,
  Pool,
  ResNetBasicBlock,
  build_op,
  op_cost,
  resnet_block_cost,
)


class _Op(nn.Module):
  """Wrap one cell op so it can be traced on its own."""

  name_: str
  channels: int
  stride: int

  @nn.compact
  def __call__(self, x):
    return build_op(self.name_, self.channels, self.stride, True, "op")(x, False)


@pytest.mark.parametrize("name", sorted(CELL_OPS))
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [8, 7])
def test_op_shape_and_cost(name, stride, size):
  c = 6
  x = jax.ShapeDtypeStruct((2, size, size, c), jnp.float32)
  op = _Op(name, c, stride)
  y = jax.eval_shape(lambda x: op.init_with_output(jax.random.key(0), x)[0], x)
  out = -(-size // stride)
  assert y.shape == (2, out, out, c)
  assert module_costs(op, x) == op_cost(name, c, size, size, stride)


def test_reference_param_formulas():
  # DARTS SepConv: two (depthwise k x k + pointwise + BN) units; DilConv one unit.
  c = 16
  assert op_cost("sep_conv_3x3", c, 8, 8)[1] == 2 * (9 * c + c * c + 2 * c)
  assert op_cost("dil_conv_5x5", c, 8, 8)[1] == 25 * c + c * c + 2 * c
  assert op_cost("nor_conv_3x3", c, 8, 8)[1] == 9 * c * c + 2 * c
  assert op_cost("conv_1x7_7x1", c, 8, 8)[1] == 14 * c * c + 2 * c
  assert op_cost("skip_connect", c, 8, 8, stride=2)[1] == c * c + 2 * c  # FactorizedReduce
  for name in ("none", "skip_connect", "avg_pool_3x3", "max_pool_7x7"):
    assert op_cost(name, c, 8, 8) == (0, 0)


@pytest.mark.parametrize("c_in,c_out,stride", [(4, 8, 2), (4, 8, 1), (8, 8, 1)])
def test_resnet_block_cost(c_in, c_out, stride):
  x = jax.ShapeDtypeStruct((1, 8, 8, c_in), jnp.float32)
  assert module_costs(ResNetBasicBlock(c_out, stride), x) == resnet_block_cost(
    c_in, c_out, 8, 8, stride
  )


def test_avg_pool_excludes_padding_and_max_pool_pads_with_minus_inf():
  x = jnp.ones((1, 4, 4, 1))
  y = Pool("avg", 3, 1).apply({}, x)
  np.testing.assert_allclose(y, 1.0)  # corners average 4 real values, not 4/9
  y = Pool("max", 3, 2).apply({}, -x)
  np.testing.assert_allclose(y, -1.0)  # padding never wins a max


@pytest.mark.parametrize("hw,stride", [((8, 8), 1), ((7, 9), 1), ((8, 8), 2), ((7, 7), 2)])
def test_avg_pool_divisor_equals_flax_count_include_pad_false(hw, stride):
  """The divisor is computed in numpy (no constant folding in XLA): the same bits as flax."""
  x = jax.random.normal(jax.random.key(0), (2, *hw, 3))
  got = Pool("avg", 3, stride).apply({}, x)
  ref = nn.avg_pool(x, (3, 3), (stride, stride), ((1, 1), (1, 1)), count_include_pad=False)
  np.testing.assert_array_equal(got, ref)


def test_factorized_reduce_matches_darts_definition(rand_vars):
  # DARTS: cat(conv_1(relu(x)), conv_2(relu(x)[:, :, 1:, 1:])) with 1x1 stride-2 convs, then BN.
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(2, 8, 8, 3)), jnp.float32)
  fr = FactorizedReduce(6)
  v = rand_vars(init_shapes(fr, x))
  y = fr.apply(v, x)
  r = np.maximum(np.asarray(x), 0)
  p, s = v["params"], v["batch_stats"]["bn"]
  k0, k1 = np.asarray(p["conv0"]["kernel"])[0, 0], np.asarray(p["conv1"]["kernel"])[0, 0]
  z = np.concatenate([r[:, ::2, ::2] @ k0, r[:, 1::2, 1::2] @ k1], axis=-1)
  ref = (z - s["mean"]) / np.sqrt(s["var"] + 1e-5) * p["bn"]["scale"] + p["bn"]["bias"]
  np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)
  assert fr.apply(v, jnp.zeros((1, 7, 7, 3))).shape == (1, 4, 4, 6)
