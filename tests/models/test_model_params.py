"""Exact parameter counts and initialisation of the baseline backbones.

Counts use jax.eval_shape on init, so even WRN-28-10 costs only a trace. Real inits use 'rbg'
keys: on a CPU, XLA compiles threefry's random ops about 10x slower, which would dominate.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml.models import count_params, get_model


def _param_shapes(model, hw=32):
  variables = jax.eval_shape(
    lambda: model.init(jax.random.key(0), jnp.zeros((1, hw, hw, 3)), train=False)
  )
  return variables["params"]


@pytest.mark.parametrize(
  "name,kwargs,expected,paper_millions",
  [
    # kuangliu/pytorch-cifar: ResNet18 11,173,962, ResNet34 21,282,122, ResNet50 23,520,842.
    ("resnet18", {}, 11_173_962, 11.17),
    ("resnet34", {}, 21_282_122, 21.28),
    ("resnet50", {}, 23_520_842, 23.52),
    # He et al. 2016 Table 6 (option A shortcuts): 0.27M, 0.85M, 1.7M.
    ("resnet20", {}, 269_722, 0.27),
    ("resnet56", {}, 853_018, 0.85),
    ("cifar_resnet", {"depth": 110, "width": 16}, 1_727_962, 1.7),
    # Zagoruyko & Komodakis 2016 Table 4 / reference code: 36.5M, 8.9M, 11.0M.
    ("wrn", {"depth": 28, "width": 10}, 36_479_194, 36.5),
    ("wrn", {"depth": 40, "width": 4}, 8_949_210, 8.9),
    ("wrn", {"depth": 16, "width": 8}, 10_961_370, 11.0),
  ],
)
def test_exact_param_counts(name, kwargs, expected, paper_millions):
  n = count_params(_param_shapes(get_model(name, 10, **kwargs)))
  assert n == expected
  digits = len(str(paper_millions).split(".")[1])
  assert round(n / 1e6, digits) == paper_millions


def test_count_independent_of_input_size_and_classes():
  model = get_model("resnet20", 100)
  # 64*100 + 100 head parameters instead of 64*10 + 10.
  assert count_params(_param_shapes(model, hw=8)) == 269_722 - 650 + 6_500


@pytest.fixture(scope="module")
def resnet8():
  """A real (not eval_shape) init of an 8-layer, 16-channel CIFAR ResNet."""
  model = get_model("cifar_resnet", 10, depth=8, width=16)
  init = jax.jit(model.init, static_argnames="train")
  return model, init(jax.random.key(1, impl="rbg"), jnp.zeros((1, 8, 8, 3)), train=False)


def test_count_params_real_arrays_match_shapes(resnet8):
  model, variables = resnet8
  assert count_params(variables["params"]) == count_params(_param_shapes(model, hw=8))
  assert count_params(variables["params"]) == sum(
    x.size for x in jax.tree.leaves(variables["params"])
  )


def test_option_a_has_no_projection_and_resnet18_has():
  r56 = _param_shapes(get_model("resnet56", 10))
  kernels = [p for p, _ in jax.tree_util.tree_flatten_with_path(r56)[0] if "kernel" in str(p)]
  # He et al. count 6n+2 = 56 weighted layers: 55 convs (no shortcut convs) + the dense head.
  assert len(kernels) == 56
  r18 = _param_shapes(get_model("resnet18", 10))
  assert {"proj_conv", "proj_bn"} <= set(r18["stage2_block1"])
  assert "proj_conv" not in r18["stage1_block1"]


def test_params_are_float32_with_bf16_compute():
  params = _param_shapes(get_model("wrn", 10, dtype="bfloat16", depth=10, width=2))
  assert {x.dtype for x in jax.tree.leaves(params)} == {jnp.dtype(jnp.float32)}


def test_conv_init_is_untruncated_kaiming_normal_fan_out(resnet8):
  params = resnet8[1]["params"]
  w = np.asarray(params["stage3_block1"]["conv2"]["kernel"])  # 3x3x64x64
  std = math.sqrt(2.0 / (3 * 3 * 64))
  np.testing.assert_allclose(w.std(), std, rtol=0.03)
  assert abs(w.mean()) < 0.02 * std
  # A plain normal puts ~4.6% of the mass beyond 2 std; flax's truncated normal puts none.
  assert 0.03 < np.mean(np.abs(w) > 2 * std) < 0.06
  # The dense head follows torch's nn.Linear default: U(-1/sqrt(64), 1/sqrt(64)), zero bias.
  head = np.asarray(params["head"]["kernel"])
  assert np.abs(head).max() <= 1 / 8 and np.abs(head).max() > 0.9 / 8
  np.testing.assert_array_equal(params["head"]["bias"], 0.0)
  np.testing.assert_array_equal(params["stem_bn"]["scale"], 1.0)
