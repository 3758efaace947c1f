"""Shared helpers of the backbone tests: parameter and FLOP counts without any compute."""

import functools

import jax
import jax.numpy as jnp
import pytest

from jaxml.metrics.flops import count_flops
from jaxml.models import count_params, get_model


def abstract_costs(name: str, size: int = 224, num_classes: int = 1000, **fields):
  """(params, multiply-adds per image) of registry model `name` on a `size` px input (cached:
  tests of one model share the trace).

  Params come from `jax.eval_shape(model.init)`, multiply-adds from `count_flops` (the jaxpr of
  one eval-mode forward on abstract inputs; 2 FLOPs per multiply-add, so / 2): shapes only,
  nothing is compiled or computed.
  """
  return _costs(name, size, num_classes, tuple(sorted(fields.items())))


@functools.cache
def _costs(name: str, size: int, num_classes: int, fields: tuple):
  model = get_model(name, num_classes, **dict(fields))
  x = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
  variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
  flops = count_flops(lambda v, x: model.apply(v, x, train=False), variables, x)
  return count_params(variables["params"]), flops / 2


def abstract_forward(name: str, size: int, batch: int = 2, num_classes: int = 10, **fields):
  """(logits, variables) of `name`'s train-mode init + forward as ShapeDtypeStructs."""
  model = get_model(name, num_classes, **fields)
  x = jax.ShapeDtypeStruct((batch, size, size, 3), jnp.float32)
  init = lambda x: model.init_with_output(jax.random.key(0), x, train=True)
  return jax.eval_shape(init, x)


@pytest.fixture(name="abstract_costs")
def abstract_costs_fixture():
  return abstract_costs


@pytest.fixture(name="abstract_forward")
def abstract_forward_fixture():
  return abstract_forward
