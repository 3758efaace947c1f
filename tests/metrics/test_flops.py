"""The jaxpr FLOP counter against hand counts: dense, strided and grouped convs, vmap, grad."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

from jaxml.metrics.flops import count_flops
from jaxml.models import get_model


def test_dense_and_its_gradient():
  x, w = jnp.ones((4, 3)), jnp.ones((3, 5))
  assert count_flops(jnp.dot, x, w) == 2 * 4 * 3 * 5
  # Backward of x @ w w.r.t. both: dx = g @ w.T and dw = x.T @ g, each as costly as the forward.
  grad = jax.grad(lambda x, w: jnp.sum(x @ w), argnums=(0, 1))
  assert count_flops(grad, x, w) == 3 * 2 * 4 * 3 * 5


@pytest.mark.parametrize("stride,groups", [(1, 1), (2, 1), (1, 4)])
def test_conv_forward(stride, groups):
  conv = nn.Conv(8, (3, 3), strides=stride, padding=1, feature_group_count=groups, use_bias=False)
  x = jnp.ones((2, 16, 16, 4))
  params = conv.init(jax.random.key(0), x)
  out = 16 // stride
  expected = 2 * (2 * out * out * 8) * (9 * 4 // groups)
  assert count_flops(conv.apply, params, x) == expected


def test_strided_conv_input_gradient_counts_only_real_taps():
  """The input gradient of a stride-2 conv is a transposed conv as costly as the forward (grad
  traces the forward too, hence 2x)."""
  conv = nn.Conv(8, (3, 3), strides=2, padding=1, use_bias=False)
  x = jnp.ones((2, 16, 16, 4))
  params = conv.init(jax.random.key(0), x)
  fwd = count_flops(conv.apply, params, x)
  dx = jax.grad(lambda x: jnp.sum(conv.apply(params, x)))
  assert count_flops(dx, x) == pytest.approx(2 * fwd, rel=0.02)


def test_vmap_and_scan_multiply():
  x, w = jnp.ones((6, 4, 3)), jnp.ones((3, 5))
  assert count_flops(jax.vmap(lambda x: x @ w), x) == 6 * 2 * 4 * 3 * 5
  scanned = lambda x: jax.lax.scan(lambda c, xi: (c, xi @ w), 0.0, x)[1]
  assert count_flops(scanned, x) == 6 * 2 * 4 * 3 * 5


def test_resnet18_forward_is_the_published_count():
  """kuangliu/pytorch-cifar ResNet-18 on 32x32: 0.56 G multiply-adds per image."""
  model = get_model("resnet18", 10)
  x = jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32)
  variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
  flops = count_flops(lambda v, x: model.apply(v, x, train=False), variables, x)
  assert flops / 2 == pytest.approx(0.556e9, rel=0.01)
