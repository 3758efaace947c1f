"""Population engine: copies == independent runs, controller ops, sharding, multi-host, NaNs."""

import json
import os
import socket
import subprocess
import sys

import chex
import jax
import numpy as np
import pytest
from population_fixtures import (
  IMAGE,
  init_keys,
  init_population,
  make_engine,
  run_population,
  tiny_data,
)

from jaxml import training
from jaxml.errors import ConfigError
from jaxml.population import (
  KEPT_ON_BROADCAST,
  Population,
  mesh_shape,
  nonfinite_copies,
  resolve_mapping,
)
from jaxml.training import StepInputs

WORKER = os.path.join(os.path.dirname(__file__), "population_worker.py")


def single_copy_run(i: int, size: int, steps: int, lr_scale=None, mapping="loop"):
  """Copy i of a size-K population trained alone: the engine with K = 1 and copy i's keys."""
  pkeys, rkeys = init_keys(size)
  state, metrics, _ = run_population(
    Population(1, mapping),
    steps=steps,
    keys=(pkeys[i : i + 1], rkeys[i : i + 1]),
    lr_scales=None if lr_scale is None else [lr_scale],
  )
  return jax.tree.map(lambda x: x[0], state), jax.tree.map(lambda x: x[0], metrics)


def test_engine_matches_plain_jit_of_the_step():
  """K = 1 through shard_map + mapping computes what jit(train_step) of one copy computes."""
  engine = make_engine(Population(1, "loop"))
  pkeys, rkeys = init_keys(1)
  state = training.init_copy(
    engine.model,
    engine.tx,
    training.wrap_param_key(pkeys[0]),
    jax.random.wrap_key_data(rkeys[0]),
    (IMAGE, IMAGE, 3),
  )
  step = jax.jit(engine.train_step_one)
  for s in range(3):
    state, _ = step(state, engine.step_inputs({}, {}, s))
  got, _ = single_copy_run(0, 1, 3)
  # Different programs may fuse reductions differently: equal up to float reassociation.
  chex.assert_trees_all_close(got.params, state.params, atol=1e-6, rtol=1e-5)


def test_step_inputs_axes_name_what_is_per_copy():
  assert StepInputs.axes(same_batch=True).order is None
  assert StepInputs.axes(same_batch=False).order == 0
  axes = StepInputs.axes()
  assert axes.hparams == 0 and axes.shared is None and axes.images is None and axes.step is None


@pytest.mark.parametrize("mapping", ["loop", "vmap", "scan"])
def test_map_takes_tree_prefixes_of_in_axes(mapping):
  """A dict argument whose entries are per copy and shared, described by a prefix."""
  pop = Population(3, mapping)
  f = pop.map(lambda a, b: a["x"] * b["y"] + a["z"], ({"x": 0, "z": 0}, None))
  a = pop.put_copies({"x": np.arange(3.0), "z": np.ones(3)})
  out = f(a, pop.put_replicated({"y": np.float32(2.0)}))
  np.testing.assert_array_equal(np.asarray(out), [1.0, 3.0, 5.0])


# vmap and scan: CI's slow tier (the README tier keeps loop, bit-identical, under 10 min)
SLOW = pytest.mark.slow


@pytest.mark.parametrize(
  "mapping", ["loop", pytest.param("vmap", marks=SLOW), pytest.param("scan", marks=SLOW)]
)
def test_population_equals_independent_runs(mapping):
  pop = Population(4, mapping)
  state, metrics, _ = run_population(pop, steps=3)
  for i in range(4):
    ref, ref_metrics = single_copy_run(i, 4, 3, mapping=mapping)
    got = jax.tree.map(lambda x: x[i], state)
    if mapping in ("loop", "scan"):  # each copy runs the K = 1 graph: bit-identical
      chex.assert_trees_all_equal(got.params, ref.params)
      chex.assert_trees_all_equal(got.batch_stats, ref.batch_stats)
    else:  # vmap batches the convolutions: equal up to float reassociation
      chex.assert_trees_all_close(got.params, ref.params, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(metrics["loss"][i], ref_metrics["loss"], rtol=1e-5)


def test_copies_differ_and_step_counts():
  pop = Population(2, "loop")
  state, _, _ = run_population(pop, steps=2)
  np.testing.assert_array_equal(np.asarray(state.step), [2, 2])
  leaf = jax.tree.leaves(state.params)[0]
  assert not np.array_equal(leaf[0], leaf[1])


@pytest.mark.parametrize("per_copy_orders", [False, True])
def test_same_or_different_batches(per_copy_orders):
  """Two copies with identical keys stay identical on the same batches and diverge otherwise."""
  pkeys, rkeys = init_keys(1)
  keys = (np.concatenate([pkeys, pkeys]), np.concatenate([rkeys, rkeys]))
  state, _, _ = run_population(
    Population(2, "loop"), steps=2, keys=keys, per_copy_orders=per_copy_orders
  )
  leaf = np.asarray(jax.tree.leaves(state.params)[0])
  assert np.array_equal(leaf[0], leaf[1]) != per_copy_orders


def test_broadcast_select_replace_reset():
  pop = Population(4, "loop")
  state, _, _ = run_population(pop, steps=1)
  b = pop.broadcast(state, 2)
  for i in range(4):
    chex.assert_trees_all_equal(
      jax.tree.map(lambda x: x[i], b.params), jax.tree.map(lambda x: x[2], state.params)
    )
    chex.assert_trees_all_equal(
      jax.tree.map(lambda x: x[i], b.opt_state), jax.tree.map(lambda x: x[2], state.opt_state)
    )
  np.testing.assert_array_equal(b.rng, state.rng)  # randomness stays per copy
  np.testing.assert_array_equal(b.step, state.step)
  assert set(KEPT_ON_BROADCAST) == {"step", "rng", "aux"}

  s = pop.select(state, [3, 3, 0, 1])
  for j, src in enumerate([3, 3, 0, 1]):
    chex.assert_trees_all_equal(
      jax.tree.map(lambda x: x[j], s), jax.tree.map(lambda x: x[src], state)
    )
  with pytest.raises(ValueError):
    pop.select(state, [0, 1])

  fresh, _, _ = run_population(pop, steps=0, seed=5)
  r = pop.reset(state, [1], fresh)
  chex.assert_trees_all_equal(
    jax.tree.map(lambda x: x[1], r.params), jax.tree.map(lambda x: x[1], fresh.params)
  )
  chex.assert_trees_all_equal(
    jax.tree.map(lambda x: x[0], r.params), jax.tree.map(lambda x: x[0], state.params)
  )
  new = jax.tree.map(lambda x: x[:2], fresh)
  r2 = pop.replace(state, [0, 3], new)
  chex.assert_trees_all_equal(
    jax.tree.map(lambda x: x[3], r2.params), jax.tree.map(lambda x: x[1], fresh.params)
  )


def test_nan_copy_is_reported_and_isolated():
  pop = Population(4, "loop")
  scales = [1.0, 1.0, 1e30, 1.0]  # copy 2 diverges
  state, metrics, _ = run_population(pop, steps=3, lr_scales=scales)
  assert nonfinite_copies(metrics["loss"]) == [2]
  for i in (0, 1, 3):
    ref, _ = single_copy_run(i, 4, 3, lr_scale=1.0)
    chex.assert_trees_all_equal(jax.tree.map(lambda x: x[i], state.params), ref.params)


def test_mesh_shape_and_mapping_errors():
  assert mesh_shape(8, 8) == (8, 1)
  assert mesh_shape(16, 8) == (8, 1)
  assert mesh_shape(2, 8) == (2, 4)
  with pytest.raises(ConfigError, match="does not fit 8 devices"):
    mesh_shape(3, 8)
  with pytest.raises(ConfigError, match="valid: auto, vmap, loop"):
    resolve_mapping("pmap")
  assert resolve_mapping("auto", "cpu") == "loop"
  assert resolve_mapping("auto", "gpu") == "vmap"
  # GPUs: 'loop' up to GPU_LOOP_MAX copies per device (measured on an H200), 'vmap' beyond.
  assert resolve_mapping("auto", "gpu", 8) == "loop"
  assert resolve_mapping("auto", "cuda", 9) == "vmap"
  assert resolve_mapping("auto", "tpu", 2) == "vmap"
  assert resolve_mapping("vmap", "gpu", 2) == "vmap"


def _worker(*args, env_extra=None):
  env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(), *sys.path]))
  env.update(env_extra or {})
  return subprocess.Popen(
    [sys.executable, WORKER, *map(str, args)],
    env=env,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
  )


def _digest(proc) -> dict:
  out, err = proc.communicate(timeout=240)
  assert proc.returncode == 0, err[-3000:]
  line = [ln for ln in out.splitlines() if ln.startswith("DIGEST ")]
  return json.loads(line[0][len("DIGEST ") :]) if line else {}


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _max_diff(a, b) -> float:
  return max(float(np.abs(np.asarray(x) - np.asarray(y)).max()) for x, y in zip(a, b))


@pytest.mark.slow  # end to end
def test_sharded_8_devices_equals_unsharded_and_two_processes():
  # Both workers at once: each is mostly single-threaded import and compile (2 cores in CI).
  ref, sharded = map(_digest, [_worker("--devices", n, "--size", 8) for n in (1, 8)])
  assert sharded["mesh"] == {"copy": 8, "data": 1}
  # One copy per device vs eight on one device: XLA:CPU may split reductions differently
  # (measured max |diff| 6e-8 after 3 steps), so equal up to float reassociation.
  assert _max_diff(sharded["params"], ref["params"]) < 1e-6
  assert sharded["eval_accuracy"] == ref["eval_accuracy"]

  port = _free_port()
  procs = [
    _worker("--devices", 4, "--size", 8, "--process-id", i, "--num-processes", 2, "--port", port)
    for i in range(2)
  ]
  two = [_digest(p) for p in procs][0]
  assert two["process_count"] == 2 and two["mesh"] == {"copy": 8, "data": 1}
  # The same 8-device layout split over 2 processes (gloo collectives). XLA:CPU compiles the
  # per-device program differently for other device counts per process (measured |diff| ~6e-8),
  # so equal up to float reassociation, like the single-process sharding above.
  assert _max_diff(two["params"], sharded["params"]) < 1e-6
  np.testing.assert_allclose(two["loss"], sharded["loss"], rtol=1e-5)
  assert two["eval_accuracy"] == sharded["eval_accuracy"]


def test_data_axis_when_fewer_copies_than_devices():
  """2 copies on 8 devices: each copy's batch is split over 4 devices (gradients pmean'd).

  Without BatchNorm (per-shard statistics) and random crops (drawn per shard), a data-parallel
  step is the single-device step up to the order of float sums; a psum in place of the pmean
  (4x the gradient) or a missing reduction would break the equality.
  """
  args = ("--size", 2, "--model", "mlp", "--no-augment", "--steps", 3)
  ref, dp = map(_digest, [_worker("--devices", n, *args) for n in (1, 8)])  # run side by side
  assert dp["mesh"] == {"copy": 2, "data": 4}
  assert _max_diff(dp["params"], ref["params"]) < 1e-5
  np.testing.assert_allclose(dp["loss"], ref["loss"], rtol=1e-5)
  assert dp["eval_accuracy"] == ref["eval_accuracy"]


def test_fast_compile_keeps_only_the_options_this_xla_accepts(monkeypatch):
  """An option this XLA does not know (jax 0.12 dropped xla_cpu_use_fusion_emitters) would fail
  every compile: it is probed and left out."""
  from jaxml import population

  bogus = {**population.FAST_COMPILE_CPU, "xla_no_such_option_for_test": True}
  monkeypatch.setattr(population, "FAST_COMPILE_CPU", bogus)
  population.accepted_cpu_options.cache_clear()
  try:
    accepted = population.accepted_cpu_options()
  finally:
    population.accepted_cpu_options.cache_clear()
  assert "xla_no_such_option_for_test" not in accepted
  assert accepted["xla_backend_optimization_level"] == 0


def test_evaluate_halves_are_the_even_and_the_odd_examples():
  images, labels = tiny_data()  # 32 examples, batches of 8: in-batch parity = global parity
  sets = {"val": (images, labels), "even": (images[0::2], labels[0::2])}
  sets["odd"] = (images[1::2], labels[1::2])
  engine = make_engine(Population(2, "vmap"), eval_sets=sets)
  state = init_population(engine, init_keys(2))
  state, _ = engine.step(state, engine.pop.put_copies({}), {}, 0)
  val, even, odd = (engine.evaluate(state, name) for name in ("val", "even", "odd"))
  for key in ("accuracy", "loss"):
    halves = np.asarray(val[f"{key}_halves"])
    assert halves.shape == (2, 2)  # [copies, halves]
    np.testing.assert_allclose(halves[:, 0], even[key], rtol=1e-5)
    np.testing.assert_allclose(halves[:, 1], odd[key], rtol=1e-5)
    np.testing.assert_allclose(halves.mean(1), val[key], rtol=1e-5)  # equal halves
  one = engine.evaluate_copy(state, 1, "val")
  assert one["accuracy"] == pytest.approx(float(val["accuracy"][1]))
  assert one["loss_halves"] == pytest.approx(np.asarray(val["loss_halves"][1]).tolist())
