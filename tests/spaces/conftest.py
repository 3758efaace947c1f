"""Shared helpers of the search-space tests.

Compiling `module.init` of an array build takes minutes on a 2-core CPU (one threefry call per
parameter), so tests fill `jax.eval_shape(init)` shapes with numpy random numbers instead, draw
encodings with numpy where they only need data, and pass variables to jitted functions as
arguments (closed-over arrays become constants that XLA folds at compile time).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml.spaces.counting import init_shapes


def random_variables(shapes, seed: int = 0):
  """Fill a tree of ShapeDtypeStructs: weights ~ N(0, 0.5), BN variances in [0.5, 1.5]."""
  rng = np.random.default_rng(seed)

  def fill(path, s):
    if "var" in jax.tree_util.keystr(path):
      return jnp.asarray(rng.uniform(0.5, 1.5, s.shape), s.dtype)
    return jnp.asarray(rng.normal(0.0, 0.5, s.shape), s.dtype)

  return jax.tree_util.tree_map_with_path(fill, shapes)


def random_encodings(space, n: int, seed: int = 0) -> np.ndarray:
  """n uniform encodings drawn with numpy."""
  rng = np.random.default_rng(seed)
  return rng.integers(0, space.bounds(), size=(n, space.encoding_length)).astype(np.int32)


def subtree(full, like):
  """The part of nested dict `full` at the paths of `like`; asserts the shapes agree."""
  if not isinstance(like, dict):
    assert full.shape == like.shape, (full.shape, like.shape)
    return full
  missing = set(like) - set(full)
  assert not missing, f"fixed-build variables {sorted(missing)} are not in the array build"
  return {k: subtree(full[k], v) for k, v in like.items()}


# These tests check numerics, not speed: XLA's backend optimizations cost more compile time than
# they save at these sizes.
FAST_COMPILE = {"xla_backend_optimization_level": 0}


def fast_jit(fn, **kwargs):
  """`jax.jit` with the cheap-compile options above."""
  return jax.jit(fn, compiler_options=FAST_COMPILE, **kwargs)


@functools.lru_cache
def _array_shapes(module, x_shape, length: int):
  """init_shapes of an array build, traced once per (module, input shape)."""
  x = jax.ShapeDtypeStruct(x_shape, jnp.float32)
  return init_shapes(module, x, jax.ShapeDtypeStruct((length,), jnp.int32))


def _apply_fn(module, train: bool):
  """(v, x, *encoding) -> (output, new BN stats or {}), in eval or training mode."""

  def run(v, x, *encoding):
    if train:
      y, new = module.apply(v, x, *encoding, train=True, mutable=["batch_stats"])
      return y, new["batch_stats"]
    return module.apply(v, x, *encoding), {}

  return run


@functools.lru_cache
def jitted_apply(module, train: bool = False):
  """Jitted `_apply_fn(module, train)`, compiled once per (hashable) module and mode."""
  return fast_jit(_apply_fn(module, train))


def _close(a, b, msg=""):
  np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-4, atol=2e-5, err_msg=msg)


def check_fixed_matches_array(space, x, encodings, train: bool, seed: int = 0, vmap: bool = True):
  """Array build == fixed build of each encoding, in eval (train=False) or training mode.

  The array build runs vmapped over the encodings with shared weights (or looped), the fixed
  builds one by one with the sub-tree of the same weights. Checks that the fixed build's
  variables are a sub-tree of the array build's (same names and shapes), that the outputs
  agree and, in training mode, that the updated BN statistics of the chosen ops agree.
  (One mode per compiled program: XLA compiles two modes in one program slower than apart.)
  """
  arr = space.network()
  encodings = jnp.asarray(encodings, jnp.int32)
  variables = random_variables(_array_shapes(arr, x.shape, encodings.shape[-1]), seed)
  run = _apply_fn(arr, train)
  if vmap:
    ys, stats = fast_jit(jax.vmap(run, in_axes=(None, None, 0)))(variables, x, encodings)
  else:
    step = fast_jit(run)
    ys, stats = jax.tree.map(lambda *a: jnp.stack(a), *[step(variables, x, e) for e in encodings])
  ys, stats = np.asarray(ys), jax.tree.map(np.asarray, stats)
  for k, enc in enumerate(np.asarray(encodings)):
    fixed = space.network(enc)
    sub = subtree(variables, init_shapes(fixed, x))
    y, new = jitted_apply(fixed, train)(sub, x)
    msg = space.to_string(enc)
    _close(ys[k], y, msg)
    if train:
      mine = jax.tree.map(lambda a, k=k: a[k], stats)
      jax.tree.map(functools.partial(_close, msg=msg), new, subtree(mine, new))
  return ys


@pytest.fixture
def rand_encs():
  return random_encodings


@pytest.fixture
def rand_vars():
  return random_variables


@pytest.fixture
def fixed_matches_array():
  return check_fixed_matches_array


@pytest.fixture
def sub_tree():
  return subtree


@pytest.fixture
def fixed_apply():
  return jitted_apply


@pytest.fixture
def jit_fast():
  return fast_jit


def check_costs_match_counters(space, enc, x) -> None:
  """`space.flops` / `space.params` of `enc` equal the jaxpr counters on its fixed build."""
  from jaxml.metrics.flops import count_flops
  from jaxml.spaces import count_macs, count_params

  net = space.network(enc)
  variables = jax.eval_shape(lambda: net.init(jax.random.key(0), x, train=False))
  flops = count_flops(lambda v: net.apply(v, x, train=False), variables)
  assert flops == 2 * (space.flops(enc) - space.num_classes)  # the dense bias is no FLOP
  assert count_macs(net, x, train=False) == space.flops(enc)
  assert count_params(variables["params"]) == space.params(enc)


@pytest.fixture
def costs_match_counters():
  return check_costs_match_counters
