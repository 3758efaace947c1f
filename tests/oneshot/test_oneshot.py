"""One-shot NAS library (`jaxml.oneshot`): sampled paths vs fixed builds, gradients only on the
sampled path, batched scoring with per-path BN recalibration, samplers, costs and constraints."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml import oneshot
from jaxml.errors import ConfigError
from jaxml.evaluation import eval_batches
from jaxml.nasbench import nb201
from jaxml.population import accepted_cpu_options
from jaxml.search.spos_evolution import SPOSEvolution
from jaxml.spaces import NB201Space
from jaxml.spaces import nb201_encoding as E

SPACE = NB201Space(channels=2, cells_per_stage=1, num_classes=10, input_size=8)
CONVS = (2, 3)  # nor_conv_1x1, nor_conv_3x3: the ops with weights


def fast(fn):
  """jit with XLA:CPU's cheap compile: op-by-op the array build dispatches hundreds of ops."""
  return jax.jit(fn, compiler_options=accepted_cpu_options())


@pytest.fixture(scope="module")
def supernet():
  net = SPACE.network()
  x = jax.random.normal(jax.random.key(1), (8, 8, 8, 3))
  variables = fast(lambda x: net.init(jax.random.key(0), x, encoding=jnp.full(6, 3, jnp.int32)))(
    x[:1]
  )
  # Non-trivial BN statistics, as after training.
  stats = jax.tree.map(lambda s: s + 0.3, variables["batch_stats"])
  return net, {**variables, "batch_stats": stats}, x


def test_path_output_equals_the_fixed_network(supernet):
  net, variables, x = supernet
  model = oneshot.SampledPath(net, oneshot.UniformSampler(SPACE))
  key = jax.random.key(7)
  sampled = np.asarray(oneshot.UniformSampler(SPACE)(key, 1)[0])
  encs = np.asarray([[3, 2, 3, 1, 4, 0], sampled])

  @fast
  def supernet_outputs(v, x, encs):
    given = jax.vmap(lambda e: model.apply(v, x, eval_encoding=e))(encs)
    drawn, _ = model.apply(v, x, train=True, mutable=["batch_stats"], rngs={"path": key})
    return given, drawn

  given, drawn = supernet_outputs(variables, x, jnp.asarray(encs))
  for i, enc in enumerate(encs):
    fixed = SPACE.network(enc)
    want = fast(lambda v, x: fixed.apply(v, x, train=False))(variables, x)
    np.testing.assert_allclose(given[i], want, rtol=1e-5, atol=1e-6)
  # The path drawn in training is the sampler's draw from the 'path' rng.
  fixed = SPACE.network(sampled)
  want = fast(lambda v, x: fixed.apply(v, x, train=True, mutable=["batch_stats"])[0])(variables, x)
  np.testing.assert_allclose(drawn, want, rtol=1e-5, atol=1e-6)
  with pytest.raises(ConfigError, match="eval_encoding"):
    model.apply(variables, x)


def test_only_the_sampled_paths_get_gradient(supernet):
  sub_batches = 2  # two paths, each on half the batch
  net, variables, x = supernet
  sampler = oneshot.UniformSampler(SPACE)
  model = oneshot.SampledPath(net, sampler, sub_batches)
  key = jax.random.key(3)
  paths = np.asarray(sampler(key, sub_batches))

  def loss(params):
    out, _ = model.apply(
      {**variables, "params": params}, x, train=True, mutable=["batch_stats"], rngs={"path": key}
    )
    return jnp.sum(out**2)

  grads = fast(jax.grad(loss))(variables["params"])
  touched = []
  for layer, cell in grads.items():
    if not layer.startswith("layer") or "conv_a" in cell:  # ResNet blocks are always on
      continue
    for name, g in cell.items():
      edge, op = int(name[4]), E.OPS.index(name.split("_", 1)[1])
      norm = sum(float(jnp.abs(v).sum()) for v in jax.tree.leaves(g))
      if op not in paths[:, edge]:
        assert norm == 0.0, (layer, name)
      elif op in CONVS:
        touched.append(norm)
  assert touched and max(touched) > 0


def _calib(n_batches=3, bs=4, seed=0):
  rng = np.random.default_rng(seed)
  return jnp.asarray(rng.integers(0, 256, (n_batches, bs, 8, 8, 3), dtype=np.uint8))


def _eval_data():
  rng = np.random.default_rng(5)
  images = rng.integers(0, 256, (10, 8, 8, 3), dtype=np.uint8)
  return tuple(jnp.asarray(a) for a in eval_batches(images, rng.integers(0, 10, 10), 4))


def test_recalibration_is_the_cumulative_average(supernet):
  net, variables, _ = supernet
  enc = jnp.asarray([3, 3, 2, 1, 3, 2])
  calib = _calib()
  recal = fast(lambda v, c: oneshot.recalibrated_stats(net, v, enc, c))
  both = recal(variables, calib)
  singles = [recal(variables, calib[i : i + 1]) for i in range(3)]
  # In train mode each batch's statistics depend on that batch only: the recalibrated value is
  # their plain mean (PyTorch's momentum=None), whatever the supernet's running values were.
  want = jax.tree.map(lambda *s: sum(s) / 3, *singles)
  for a, b in zip(jax.tree.leaves(both), jax.tree.leaves(want), strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
  before = jax.tree.leaves(variables["batch_stats"])
  assert any(not np.allclose(a, b) for a, b in zip(jax.tree.leaves(both), before, strict=True))


@pytest.mark.slow  # >20 s on 2 cores: keeps the README tier under 10 min; CI's slow tier runs it
def test_batched_scores_equal_one_path_at_a_time(supernet):
  net, variables, _ = supernet
  evaluator = oneshot.classification_evaluator(10, None)
  encs = jnp.asarray([[3, 3, 2, 1, 3, 2], [1, 0, 3, 4, 2, 3], [2, 2, 2, 2, 2, 2]], jnp.int32)
  calib, data = _calib(), _eval_data()
  opts = accepted_cpu_options()
  # One call for all paths, in chunks of 2 (lax.map over vmapped chunks, the last one padded).
  together = oneshot.make_scorer(net, evaluator, paths_per_chunk=2, compiler_options=opts)(
    variables, encs, calib, data
  )
  single = oneshot.make_scorer(net, evaluator, compiler_options=opts)
  for i in range(3):
    alone = single(variables, encs[i : i + 1], calib, data)
    for name in ("accuracy", "loss"):
      np.testing.assert_allclose(together[name][i], alone[name][0], rtol=1e-4, atol=1e-6)
  assert len(set(np.round(np.asarray(together["loss"]), 5))) == 3


def test_costs_dense_and_additive_match_the_space():
  space = NB201Space(channels=4, cells_per_stage=2, input_size=16)
  dense, additive = oneshot.PathCosts.build(space), oneshot.PathCosts.build(space, "additive")
  assert dense.mode == "dense"
  encs = space.enumerate()[::37]
  for which in ("flops", "params"):
    want = getattr(space, which)(encs).astype(np.float64)
    np.testing.assert_allclose(getattr(dense, which)(jnp.asarray(encs)), want, rtol=1e-6)
    np.testing.assert_allclose(getattr(additive, which)(jnp.asarray(encs)), want, rtol=1e-5)


def test_evolution_respects_the_flops_limit():
  costs = oneshot.PathCosts.build(SPACE)
  limit = float(np.median(costs.tables[0]))
  space = oneshot.ConstrainedSpace(SPACE, costs, max_flops=limit)
  evo = SPOSEvolution(space, population_size=10, topk=3, history_size=40)
  ask, tell = jax.jit(evo.ask), jax.jit(evo.tell)
  state = evo.init(jax.random.key(0))
  for g in range(4):
    state, cands = ask(state, jax.random.key(g))
    assert (np.asarray(costs.flops(cands)) <= limit).all()
    state = tell(state, cands, -costs.params(cands))
  with pytest.raises(ConfigError, match="PathCosts"):
    oneshot.ConstrainedSpace(SPACE, None, max_flops=1.0)


def test_flops_bin_sampler_draws_bins_uniformly():
  costs = oneshot.PathCosts.build(SPACE)
  flops = np.unique(costs.tables[0])
  edges = (flops[0], flops[len(flops) // 3], flops[2 * len(flops) // 3], flops[-1] + 1)
  sampler = oneshot.FlopsBinSampler(SPACE, costs, tuple(float(e) for e in edges), tries=50)
  paths = jax.jit(lambda k: sampler(k, 3000))(jax.random.key(0))
  which = np.searchsorted(np.asarray(edges), np.asarray(costs.flops(paths)), side="right") - 1
  frac = np.bincount(which, minlength=3) / 3000
  np.testing.assert_allclose(frac, 1 / 3, atol=0.04)  # uniform draws would be far from this
  uniform = np.asarray(costs.flops(SPACE.sample(jax.random.key(1), 3000)))
  assert abs(np.mean(uniform < edges[1]) - 1 / 3) > 0.05


def test_unique_sampler_is_uniform_over_classes(tmp_path):
  encs = E.enumerate_all()
  classes = [f"c{(e == 3).sum()}-{(e == 2).sum()}" for e in encs]  # a synthetic iso relation
  (tmp_path / "nasbench201").mkdir()
  nb201.write_csv(tmp_path / "nasbench201" / nb201.FILENAME, np.ones((3, 15625)), classes)
  table = nb201.load(str(tmp_path))
  sampler, canonical = oneshot.nb201_unique_sampler(table)
  paths = np.asarray(jax.jit(lambda k: sampler(k, 4000))(jax.random.key(0)))
  idx = E.encoding_to_index(paths)
  np.testing.assert_array_equal(canonical[idx], idx)  # representatives only
  iso = np.asarray(table.iso_id)[idx]
  counts = np.bincount(iso, minlength=sampler.num_classes)
  assert counts.min() > 0.5 * 4000 / sampler.num_classes
  assert all(E.computes_something(p) for p in paths[:200])
  rand, _ = oneshot.nb201_unique_sampler(table, pick="random")
  assert len(np.unique(E.encoding_to_index(np.asarray(rand(jax.random.key(1), 500))))) > 60
  space = oneshot.ConstrainedSpace(SPACE, canonical=canonical)
  a, b = encs[idx[0]], encs[np.flatnonzero(np.asarray(table.iso_id) == iso[0])[-1]]
  assert int(space.uid(jnp.asarray(a))) == int(space.uid(jnp.asarray(b)))


def test_pool_sampler_fixes_the_leading_positions():
  sampler = oneshot.PoolSampler(SPACE)
  pool = jnp.asarray([[1, 2, 3, 4, 0, 0], [4, 3, 2, 1, 0, 0], [0, 0, 0, 0, 0, 0]], jnp.int32)
  data = {"pool": pool, "size": jnp.int32(2), "fixed": jnp.int32(4)}
  paths = np.asarray(jax.jit(lambda k, d: sampler(k, 500, d))(jax.random.key(0), data))
  heads = {tuple(p[:4]) for p in paths}
  assert heads == {(1, 2, 3, 4), (4, 3, 2, 1)}
  assert len({tuple(p[4:]) for p in paths}) == 25


def test_split_sampler_pins_the_split_position_to_the_copy_op():
  sampler = oneshot.SplitSampler(oneshot.UniformSampler(SPACE), 2)
  paths = np.asarray(jax.jit(lambda k, d: sampler(k, 400, d))(jax.random.key(0), {"op": 3}))
  assert (paths[:, 2] == 3).all()
  rest = np.delete(paths, 2, axis=1)
  assert {tuple(p) for p in rest[:, :2]} == {(a, b) for a in range(5) for b in range(5)}
  with pytest.raises(ConfigError, match="op"):
    sampler(jax.random.key(0), 4)
