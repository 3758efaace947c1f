"""The continuous relaxation of the array builds (DARTS mixed ops, `weights=`) and its Gumbel
sampling: one-hot weights compute exactly the fixed build, derivation excludes `none`."""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml.errors import ConfigError
from jaxml.population import accepted_cpu_options
from jaxml.spaces import DARTS_V2, DARTSSpace, NB201Space
from jaxml.spaces import relaxation as R
from jaxml.spaces.counting import init_shapes

NB = NB201Space(channels=4, cells_per_stage=1, input_size=8)
DA = DARTSSpace(channels=2, layers=3, input_size=4)  # cells: normal, reduce, reduce


def _close(a, b):
  np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-4, atol=2e-5)


@functools.lru_cache
def _mixed_apply(net):
  def run(v, x, w):
    y, new = net.apply(v, x, train=True, weights=w, mutable=["batch_stats"])
    return y, new["batch_stats"]

  return jax.jit(run, compiler_options=accepted_cpu_options())


@functools.lru_cache
def _fixed_apply(net):
  def run(v, x):
    y, new = net.apply(v, x, train=True, mutable=["batch_stats"])
    return y, new["batch_stats"]

  return jax.jit(run, compiler_options=accepted_cpu_options())


@pytest.fixture
def nb201_mixed(rand_vars):
  net = NB.network()
  x = np.random.default_rng(0).normal(size=(4, 8, 8, 3)).astype(np.float32)
  w0 = jnp.zeros(R.weights_shape(NB))
  shapes = init_shapes(net, x, weights=w0)
  # The relaxed build has exactly the array build's variables (same names, same shapes).
  assert jax.tree.map(lambda s: s.shape, shapes) == jax.tree.map(
    lambda s: s.shape, init_shapes(net, x, np.zeros(6, np.int32))
  )
  return net, x, rand_vars(shapes, seed=1), _mixed_apply(net)


def test_nb201_one_hot_weights_equal_the_fixed_build(nb201_mixed, sub_tree):
  net, x, v, mixed = nb201_mixed
  for enc in ([3, 1, 2, 4, 0, 3], [1, 1, 1, 1, 1, 1]):
    y, stats = mixed(v, x, jnp.asarray(R.one_hot_weights(NB, enc)))
    fixed = NB.network(enc)
    y_ref, stats_ref = _fixed_apply(fixed)(sub_tree(v, init_shapes(fixed, x)), x)
    _close(y, y_ref)
    jax.tree.map(_close, stats_ref, sub_tree(stats, stats_ref))


def test_mix_is_the_weighted_sum_without_none():
  from jaxml.spaces.base import mix

  c = [None, jnp.ones((2, 3)), 2 * jnp.ones((2, 3))]
  _close(mix(c, jnp.asarray([0.5, 0.2, 0.3])), 0.8 * np.ones((2, 3)))
  _close(mix([None], jnp.ones(1), like=jnp.ones((2, 2))), np.zeros((2, 2)))


def test_gumbel_forward_is_the_sampled_fixed_architecture(nb201_mixed, sub_tree):
  net, x, v, mixed = nb201_mixed
  alpha = jnp.asarray(np.random.default_rng(2).normal(size=R.weights_shape(NB)), jnp.float32)
  for seed in (0,):
    w, index = R.gumbel_weights(jax.random.key(seed), alpha, 0.5)
    np.testing.assert_allclose(np.asarray(w), np.eye(5)[np.asarray(index)], atol=1e-6)
    y, _ = mixed(v, x, w)
    fixed = NB.network(np.asarray(index))
    y_ref, _ = _fixed_apply(fixed)(sub_tree(v, init_shapes(fixed, x)), x)
    _close(y, y_ref)
  # The straight-through gradient is softmax((alpha + g) / tau)'s, not zero.
  grad = jax.grad(lambda a: jnp.sum(R.gumbel_weights(jax.random.key(0), a, 0.5)[0] * alpha))(alpha)
  assert np.abs(np.asarray(grad)).max() > 1e-3


@pytest.mark.slow  # >20 s on 2 cores: keeps the README tier under 10 min; CI's slow tier runs it
def test_darts_one_hot_weights_equal_the_fixed_build(rand_vars):
  net = DA.network()
  x = np.random.default_rng(3).normal(size=(2, 4, 4, 3)).astype(np.float32)
  enc = DA.from_genotype(DARTS_V2)
  w = jnp.asarray(R.one_hot_weights(DA, enc))
  v = rand_vars(init_shapes(net, x, weights=w), seed=4)
  y, _ = _mixed_apply(net)(v, x, w)
  fixed = DA.network(enc)
  shapes = init_shapes(fixed, x)

  # Fixed-build parameters live per slot (node{b}_slot{s}_{op}), relaxed ones per edge
  # (node{b}_edge{j}_{op}): take each slot's weights from the edge of its input.
  def rename(cell_index, name):
    m = re.fullmatch(r"node(\d)_slot(\d)_(.+)", name)
    if not m:
      return name
    b, s, rest = int(m[1]), int(m[2]), m[3]
    reduction = DA.layout()[cell_index]
    j = int(enc[(((1 if reduction else 0) * 4 + b) * 2 + s) * 2])
    return f"node{b}_edge{j}_{rest}"

  def take(col):
    out = {}
    for cell, sub in shapes[col].items():
      if not cell.startswith("cell"):
        out[cell] = v[col][cell]
        continue
      i = int(cell[4:])
      out[cell] = {k: v[col][cell][rename(i, k)] for k in sub}
    return out

  fixed_vars = {col: take(col) for col in shapes}
  y_ref, _ = _fixed_apply(fixed)(fixed_vars, x)
  _close(y, y_ref)


def test_derive_excludes_none_and_keeps_two_strongest_inputs():
  w = np.full(R.weights_shape(NB), 0.1, np.float32)
  w[:, 0] = 0.9  # `none` wins every edge but is never derived
  w[np.arange(6), [1, 2, 3, 4, 1, 2]] = 0.5
  np.testing.assert_array_equal(R.derive(NB, w), [1, 2, 3, 4, 1, 2])
  enc = DA.from_genotype(DARTS_V2)
  w = R.one_hot_weights(DA, enc) * 0.5
  w[:, 0] += 0.5  # none everywhere as strong as the chosen ops: ignored
  derived = R.derive(DA, w)
  # Same (input, op) pairs per node; the slot order follows strength (ties: lower input first).
  pairs = lambda e: [sorted(map(tuple, n)) for n in e.reshape(-1, 2, 2).tolist()]  # noqa: E731
  assert pairs(derived) == pairs(enc)
  np.testing.assert_array_equal(R.derive(DA, R.one_hot_weights(DA, derived)), derived)


def test_weights_call_errors(nb201_mixed):
  net, x, v, _ = nb201_mixed
  with pytest.raises(ConfigError, match="shape"):
    net.apply(v, x, weights=jnp.zeros((5, 5)))
  with pytest.raises(ConfigError, match="without an encoding"):
    net.apply(v, x, np.zeros(6, np.int32), weights=jnp.zeros((6, 5)))
  with pytest.raises(ConfigError, match="twice"):
    dup = DA.from_genotype(DARTS_V2)
    dup[12:16] = [2, 4, 2, 4]
    R.one_hot_weights(DA, dup)
  with pytest.raises(ConfigError, match="shape"):
    R.derive(DA, np.zeros((6, 5)))
