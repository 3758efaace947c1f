"""The population engine: K model copies trained in lockstep, sharded across devices and hosts.

Every method in jaxml is a population of copies with per-copy hyper-parameters plus a controller
acting between trunks (DESIGN.md). A population is ONE pytree (`CopyState`) whose leaves have a
leading copy axis K. Single-copy functions are written once, e.g.
`train_step(state, inputs) -> (state, metrics)`, and `Population.map` turns
them into one jitted function over all copies and devices:

* the copy axis is split over the `copy` axis of a device `Mesh` with `jax.shard_map`, so each
  device holds and steps only its local copies (measured on 8 virtual CPU devices: plain `jit`
  with a NamedSharding of a vmapped step all-gathered the weights and ran 30x slower);
* within a device, local copies are mapped by `mapping`: 'vmap' (`jax.vmap` over weights, one
  batched kernel — good on GPUs, but on XLA:CPU a conv vmapped over its weights becomes a slow
  grouped convolution) or 'loop' (copies unrolled inside the same jit: K independent graphs XLA
  schedules back to back, which on CPU runs like K sequential steps without K dispatches) or
  'scan' (`jax.lax.map`: one copy's graph compiled once and run K times in a loop inside the
  jit: plain convs as 'loop', one graph to compile as 'vmap'). 'auto' picks per backend from
  `benchmarks/population_throughput.py` measurements;
* when K is smaller than the device count, the remaining factor becomes a `data` mesh axis:
  each copy's batch is split over it and gradients are averaged with `lax.pmean` (the step
  function receives `data_axis` for that).

Controller operations (`broadcast`, `select`, `replace`, `reset`) are jitted and never touch disk.
"""

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxml.errors import ConfigError

MAPPINGS = ("auto", "vmap", "loop", "scan")
COPY, DATA = "copy", "data"

# Measured defaults (benchmarks/population_throughput.py, benchmarks/gpu_suite.py, BENCHMARKS.md).
# On CPU 'loop' matched sequential copies while 'vmap' ran ~4x slower for convnets. On an H200,
# ResNet-18 at K = 8 ran 1.42x sequential with 'loop' and 0.76x with 'vmap' (vmapped convs
# become grouped convs), and the tiny proxy ran alike at K = 8 with both; above 8 copies per
# device only 'vmap' was measured ('loop' compiles one graph per copy: 52 s for 8 ResNet-18s), so
# GPUs take 'loop' up to GPU_LOOP_MAX copies per device and 'vmap' beyond. TPUs: not measured.
_AUTO_MAPPING = {"cpu": "loop", "gpu": "vmap", "cuda": "vmap", "rocm": "vmap", "tpu": "vmap"}
GPU_LOOP_MAX = 8


@flax.struct.dataclass
class CopyState:
  """The state of one model copy; in a population every leaf has a leading axis K.

  `rng` holds raw key data (uint32) so it checkpoints as a plain array. It is never broadcast:
  copies keep their own randomness after `broadcast` (OHL copies must explore differently).
  `aux` holds method-specific per-copy accumulators (e.g. OHL's sampled-pair counts).
  """

  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any
  rng: jax.Array
  aux: Any = dataclasses.field(default_factory=dict)


# What stays per copy when one copy's state is broadcast to all: the step counter, the copy's own
# randomness (OHL copies must keep exploring differently) and its per-trunk accumulators.
KEPT_ON_BROADCAST = ("step", "rng", "aux")


def resolve_mapping(
  mapping: str, backend: str | None = None, copies_per_device: int | None = None
) -> str:
  """'vmap' | 'loop' for `mapping`; 'auto' picks by backend and, on GPUs, copies per device."""
  if mapping not in MAPPINGS:
    raise ConfigError(f"population.mapping={mapping!r}; valid: {', '.join(MAPPINGS)}")
  if mapping != "auto":
    return mapping
  backend = backend or jax.default_backend()
  auto = _AUTO_MAPPING.get(backend, "vmap")
  if backend in ("gpu", "cuda", "rocm") and copies_per_device and copies_per_device <= GPU_LOOP_MAX:
    auto = "loop"
  return auto


def mesh_shape(size: int, num_devices: int) -> tuple[int, int]:
  """(copy, data) mesh axis sizes for K copies on `num_devices` devices."""
  if size < 1:
    raise ConfigError(f"population.size must be >= 1, got {size}")
  if size % num_devices == 0:
    return num_devices, 1
  if num_devices % size == 0:
    return size, num_devices // size
  raise ConfigError(
    f"population.size={size} does not fit {num_devices} devices: use a multiple or a divisor "
    f"of {num_devices} (e.g. {math.lcm(size, num_devices)} or {math.gcd(size, num_devices)})"
  )


def make_mesh(size: int, devices=None) -> Mesh:
  devices = list(devices if devices is not None else jax.devices())
  n_copy, n_data = mesh_shape(size, len(devices))
  return Mesh(np.array(devices).reshape(n_copy, n_data), (COPY, DATA))


def _is_none(x) -> bool:
  return x is None


def leaf_axes(axes, tree):
  """The full per-leaf axes of `tree` from the tree prefix `axes` (0 = per copy, None = shared)."""
  return jax.tree.map(lambda ax, sub: jax.tree.map(lambda _: ax, sub), axes, tree, is_leaf=_is_none)


def map_local(fn: Callable, mapping: str, in_axes: tuple) -> Callable:
  """Maps `fn` over the leading copy axis of its per-copy inputs.

  `in_axes[i]` is a tree prefix of argument i, as for `jax.vmap`: 0 marks a leading copy axis,
  None a value shared by all copies (e.g. `training.StepInputs.axes()` for the train step).
  """
  if mapping == "vmap":
    return jax.vmap(fn, in_axes=in_axes)
  if mapping == "scan":
    return _scanned(fn, in_axes)

  def looped(*args):
    axes = [leaf_axes(ax, a) for a, ax in zip(args, in_axes)]
    k = next(
      x.shape[0]
      for a, ax in zip(args, axes)
      for x, x_ax in zip(jax.tree.leaves(a), jax.tree.leaves(ax, is_leaf=_is_none))
      if x_ax == 0
    )
    outs = []
    for i in range(k):
      sliced = [
        jax.tree.map(lambda x, x_ax: x[i] if x_ax == 0 else x, a, ax, is_leaf=_is_none)
        for a, ax in zip(args, axes)
      ]
      outs.append(fn(*sliced))
    return jax.tree.map(lambda *xs: jnp.stack(xs), *outs)

  return looped


def _scanned(fn: Callable, in_axes: tuple) -> Callable:
  """`fn` over the copy axis with `jax.lax.map`: the per-copy leaves are scanned over, the
  shared ones closed over, so XLA compiles one copy's body and loops it K times."""

  def scanned(*args):
    flat, treedefs, per_copy = [], [], []
    for a, ax in zip(args, in_axes):
      leaves, treedef = jax.tree.flatten(a)
      flat.append(leaves)
      treedefs.append(treedef)
      per_copy.append(jax.tree.leaves(leaf_axes(ax, a), is_leaf=_is_none))

    def one_copy(copy_leaves):
      it = iter(copy_leaves)
      sliced = [
        jax.tree.unflatten(td, [next(it) if x_ax == 0 else x for x, x_ax in zip(leaves, axs)])
        for leaves, td, axs in zip(flat, treedefs, per_copy)
      ]
      return fn(*sliced)

    scanned_leaves = [
      x for leaves, axs in zip(flat, per_copy) for x, x_ax in zip(leaves, axs) if x_ax == 0
    ]
    return jax.lax.map(one_copy, scanned_leaves)

  return scanned


def _shard_map(fn, mesh, in_specs, out_specs):
  # check_vma=False: the copies' outputs vary over the copy axis by construction.
  return jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_vma=False)


def put_global(x, sharding: NamedSharding) -> jax.Array:
  """Host array -> global jax.Array (works with one or many processes; each holds all of x)."""
  x = np.asarray(x)
  return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])


# XLA:CPU options that trade run time for compile time: no LLVM optimisation, loop emitters
# instead of fusion emitters. Measured on the NAS-Bench-201 array build (C 4, N 1), one copy's
# gradient: 34 s -> 6 s of compile on a loaded 2-core CPU, but steps 2.8-4x slower
# (BENCHMARKS.md), so it pays only for runs of a few hundred steps: tests, smoke runs.
# Ignored on other backends.
FAST_COMPILE_CPU = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}


@functools.cache
def accepted_cpu_options() -> dict:
  """The `FAST_COMPILE_CPU` options this XLA accepts, probed once by compiling a no-op: XLA
  renames and drops flags between releases (jax 0.12's XLA:CPU rejects
  `xla_cpu_use_fusion_emitters`), and an unknown option fails every compile."""
  accepted = {}
  for name, value in FAST_COMPILE_CPU.items():
    try:
      jax.jit(lambda x: x + 1, compiler_options={name: value}).lower(jnp.zeros(())).compile()
    except jax.errors.JaxRuntimeError:
      continue
    accepted[name] = value
  return accepted


class Population:
  """K copies on a (copy, data) device mesh, mapped with a per-backend strategy.

  `fast_compile`: compile mapped functions with `FAST_COMPILE_CPU` on a CPU backend.
  """

  def __init__(self, size: int, mapping: str = "auto", devices=None, fast_compile: bool = False):
    self.size = size
    self.mesh = make_mesh(size, devices)
    platform = self.mesh.devices.flat[0].platform
    self.mapping = resolve_mapping(mapping, platform, size // self.mesh.shape[COPY])
    self.data_axis = DATA if self.mesh.shape[DATA] > 1 else None
    self.compiler_options = accepted_cpu_options() if fast_compile and platform == "cpu" else None

  # -- shardings ----------------------------------------------------------------------------
  def copy_sharding(self) -> NamedSharding:
    return NamedSharding(self.mesh, P(COPY))

  def replicated(self) -> NamedSharding:
    return NamedSharding(self.mesh, P())

  def put_copies(self, tree):
    """Host pytree with leading axis K -> population arrays sharded over the copy axis."""
    return jax.tree.map(lambda x: put_global(x, self.copy_sharding()), tree)

  def put_replicated(self, tree):
    return jax.tree.map(lambda x: put_global(x, self.replicated()), tree)

  def init_copies(self, init_fn: Callable, *per_copy_args) -> Any:
    """Population from a single-copy `init_fn(*args_i)`, run once per copy, then sharded.

    Initialisation is not mapped: the 'rbg' PRNG (used for weights, being fast to compile) is
    not vmap-invariant, so a vmapped init would make copy i depend on K. Identical argument
    rows are initialised once (OHL's same-init copies).
    """
    init_one = init_fn if hasattr(init_fn, "lower") else self.jit(init_fn)  # already jitted
    cache, copies = {}, []
    for i in range(self.size):
      args = tuple(np.asarray(a[i]) for a in per_copy_args)
      sig = tuple(a.tobytes() for a in args)
      if sig not in cache:
        cache[sig] = jax.device_get(init_one(*args))
      copies.append(cache[sig])
    return self.put_copies(jax.tree.map(lambda *xs: np.stack(xs), *copies))

  def jit(self, fn: Callable, **kwargs) -> Callable:
    """`jax.jit` with this population's compiler options (see `fast_compile`)."""
    return jax.jit(fn, compiler_options=self.compiler_options, **kwargs)

  # -- mapping ------------------------------------------------------------------------------
  def map(
    self, fn: Callable, in_axes: tuple, donate_argnums: tuple = (), mapping: str | None = None
  ) -> Callable:
    """One jitted function applying single-copy `fn` to every copy on every device.

    `in_axes[i]` is a tree prefix of argument i: 0 for leaves with a leading copy axis (sharded
    over `copy`), None for leaves shared by all copies (replicated). Outputs all have a leading
    copy axis. `mapping` overrides the population's mapping for this function (e.g. 'vmap' for a
    function without heavy convolutions, which would compile K times when unrolled).
    """
    local = map_local(fn, mapping or self.mapping, in_axes)

    def sharded(*args):
      # Per-leaf specs, built at trace time from the arguments (in_axes may be tree prefixes).
      in_specs = tuple(
        jax.tree.map(lambda x_ax: P(COPY) if x_ax == 0 else P(), leaf_axes(ax, a), is_leaf=_is_none)
        for a, ax in zip(args, in_axes)
      )
      return _shard_map(local, self.mesh, in_specs, P(COPY))(*args)

    return self.jit(sharded, donate_argnums=donate_argnums)

  # -- controller operations (jitted, no disk) -----------------------------------------------
  @functools.cached_property
  def _broadcast(self):
    def f(pop, i):
      take = lambda x: jnp.broadcast_to(x[i], x.shape)
      copied = {
        f.name: jax.tree.map(take, getattr(pop, f.name))
        for f in dataclasses.fields(pop)
        if f.name not in KEPT_ON_BROADCAST
      }
      return pop.replace(**copied)

    return self.jit(f, out_shardings=self.copy_sharding())

  def broadcast(self, pop: CopyState, i) -> CopyState:
    """Copy i's state to every copy (OHL: distribute the best model).

    Every field of `CopyState` is copied except those in `KEPT_ON_BROADCAST` (step, rng, aux),
    so a field added later (e.g. DARTS' alphas) is copied without touching this function.
    """
    return self._broadcast(pop, jnp.asarray(i, jnp.int32))

  @functools.cached_property
  def _select(self):
    return self.jit(
      lambda tree, idx: jax.tree.map(lambda x: x[idx], tree), out_shardings=self.copy_sharding()
    )

  def select(self, tree, idx) -> Any:
    """New population whose copy j is old copy idx[j] (len(idx) == K); for evolution."""
    idx = np.asarray(idx, np.int32)
    if idx.shape != (self.size,):
      raise ValueError(f"select needs {self.size} indices, got shape {idx.shape}")
    return self._select(tree, idx)

  @functools.cached_property
  def _replace(self):
    def f(tree, idx, new):
      return jax.tree.map(lambda x, y: x.at[idx].set(y.astype(x.dtype)), tree, new)

    return self.jit(f, out_shardings=self.copy_sharding())

  def replace(self, tree, idx, new) -> Any:
    """Copies idx (1-D) of `tree` set to the leading-axis entries of `new`."""
    return self._replace(tree, jnp.asarray(idx, jnp.int32), new)

  def reset(self, tree, idx, fresh) -> Any:
    """Copies idx re-initialised from the full-size population `fresh` (same copies of it)."""
    idx = jnp.asarray(idx, jnp.int32)
    return self.replace(tree, idx, jax.tree.map(lambda x: x[idx], fresh))


def nonfinite_copies(values) -> list[int]:
  """Indices of copies whose value (e.g. train loss) is NaN or infinite."""
  v = np.asarray(to_host(values))
  return [int(i) for i in np.nonzero(~np.isfinite(v.reshape(v.shape[0], -1)).all(axis=1))[0]]


def to_host(tree):
  """Fetches (possibly multi-host sharded) arrays to numpy on every process."""
  if jax.process_count() == 1:
    return jax.device_get(tree)
  from jax.experimental import multihost_utils

  return jax.tree.map(lambda x: np.asarray(multihost_utils.process_allgather(x, tiled=True)), tree)
