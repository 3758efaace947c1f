"""EcoNAS hierarchical proxy search end to end on tiny data and a synthetic NAS-Bench-201 table:
outputs, promotion from checkpoints (weights, optimizer state, steps), kill/resume, refusals."""

import functools
import json
import shutil

import jax
import numpy as np
import pytest
from train_fixtures import REPO_ROOT, set_path, tiny_method_config

from jaxml import checkpoint, main
from jaxml.errors import ConfigError, DataError
from jaxml.methods import econas_search
from jaxml.nasbench import nb201
from jaxml.spaces import nb201_encoding as E

# End-to-end runs are marked `slow` one by one (CI runs them once, after the fast tier); the
# pure functions, toy steps and config refusals here are fast-tier tests.

EXPERIMENT = REPO_ROOT / "experiments" / "econas" / "search_nb201.py"
K, STAGE, CYCLES = 4, 2, 2  # smoke: 1 + 1 + 0 parents, 1 + 1 promotions; 2 steps per stage
INITIAL = 3  # smoke: cycle 0 trains 3 networks of the search, its 4th slot is inactive


@pytest.fixture(scope="module")
def table_dir(tmp_path_factory):
  acc = 60 + 30 * np.random.default_rng(0).random((3, E.NUM_ARCHS))
  d = tmp_path_factory.mktemp("nb201")
  (d / "nasbench201").mkdir()
  nb201.write_csv(d / "nasbench201" / nb201.FILENAME, acc)
  return d, acc[0]


@pytest.fixture(scope="module")
def make_config(tiny_cifar_dir, table_dir, tmp_path_factory):
  cache = tmp_path_factory.mktemp("econas_cache")

  def make(arg="smoke", **overrides):
    c = tiny_method_config(f"{EXPERIMENT}:{arg}", tiny_cifar_dir, cache)
    c.model.update(name="nb201", channels=2, cells_per_stage=1, arch="")
    del c.model["width"]
    c.data.resolution = 8
    c.population.size = K
    c.econas.table_dir = str(table_dir[0])
    c.num_steps = 3 * STAGE
    c.econas.cycles = CYCLES
    for key, value in overrides.items():
      set_path(c, key, value)
    return c

  return make


KILLED_IN = 1  # the cycle whose networks are saved, but not its search state, when "killed"


@pytest.fixture(scope="module")
def full_run(make_config, tmp_path_factory):
  """The smoke search, recording every population `build_population` assembles, and a copy of
  its workdir as a kill -9 would leave it right after cycle KILLED_IN's networks were written,
  before that cycle's search state (what is on disk then is complete: saves are synchronous)."""
  workdir = tmp_path_factory.mktemp("econas_full")
  killed = tmp_path_factory.mktemp("econas_killed") / "run"
  built, build, save = [], econas_search.build_population, checkpoint.Checkpointer.save

  def spy(engine, networks, search, slot_of_row, ids, hparams, seed):
    pop = build(engine, networks, search, slot_of_row, ids, hparams, seed)
    built.append((jax.device_get(search), ids.copy(), jax.device_get(pop)))
    return pop

  def save_and_snapshot(self, step, state, metadata=None, force=False):
    save(self, step, state, metadata, force)
    if self.directory.endswith("networks") and step == KILLED_IN:
      shutil.copytree(workdir, killed)

  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(econas_search, "build_population", spy)
    mp.setattr(checkpoint.Checkpointer, "save", save_and_snapshot)
    summary = main.run_experiment(make_config(), str(workdir))
  return workdir, summary, built, killed


@functools.cache
def _saved(workdir, cycle, like_leaves, treedef):
  like = jax.tree.unflatten(treedef, [np.zeros(s, d) for s, d in like_leaves])
  with checkpoint.Checkpointer(workdir / "networks") as ckpt:
    state, meta = ckpt.restore(cycle, {"pop": like})
  return jax.device_get(state["pop"]), meta


def saved_networks(workdir, cycle, like):
  """(population, metadata) of cycle `cycle`'s networks checkpoint in `workdir`."""
  leaves, treedef = jax.tree.flatten(like)
  shapes = tuple((np.shape(x), np.asarray(x).dtype) for x in leaves)
  return _saved(workdir, cycle, shapes, treedef)


@pytest.mark.slow  # end to end
def test_outputs_and_summary(full_run, table_dir):
  workdir, summary, _, _ = full_run
  for name in ("summary.json", "search.npz", "plots/search.png", "config.json", "metrics.jsonl"):
    assert (workdir / name).exists(), name
  assert json.loads((workdir / "summary.json").read_text())["method"] == "econas_search"
  trainings = INITIAL + K * CYCLES
  assert summary["trainings"] == trainings and summary["cycles"] == CYCLES
  with np.load(workdir / "search.npz") as f:
    stage, val, net = f["stage"], f["val"], f["network"]
  # Cycle 0's inactive slot is no network of the search.
  assert stage.shape == (CYCLES + 1, K) and (stage[1:] >= 1).all()
  assert (stage[0, :INITIAL] == 1).all() and stage[0, INITIAL] == 0 and net[0, INITIAL] == -1
  assert np.isnan(val[0, INITIAL]) and (net == -1).sum() == 1
  assert summary["trainings_per_stage"] == [int((stage == s).sum()) for s in (1, 2, 3)]
  assert summary["networks_trained"] == len(np.unique(net[net >= 0]))
  assert summary["networks_trained"] == summary["trainings_per_stage"][0]
  # The answer is the best stage-3 training; its accuracy is the table's.
  assert summary["found_stage"] == 3
  assert summary["found_val_accuracy"] == pytest.approx(val[stage == 3].max())
  found = np.asarray(summary["found_encoding"])
  assert summary["found_test_accuracy_nb201"] == pytest.approx(
    table_dir[1][int(E.encoding_to_index(found))], abs=1e-4
  )
  assert (np.diff(summary["cost_per_cycle"]) > 0).all() and summary["cost_images_x_flops"] > 0
  assert summary["train_images"] == trainings * STAGE * 8


@pytest.mark.slow  # end to end
def test_a_promoted_network_continues_from_its_checkpoint(full_run):
  """Cycle c's promoted slot holds, before training, exactly the state its network had after
  its last training (weights, BN statistics, optimizer state, step); children start fresh."""
  workdir, _, built, _ = full_run
  with np.load(workdir / "search.npz") as f:
    net, stage = f["network"], f["stage"]
  checked = 0
  for c, (search, ids, pop) in enumerate(built):
    promoted = np.asarray(search.slot_promoted)
    steps = np.asarray(pop.step)
    np.testing.assert_array_equal(steps[~promoted], 0)
    for j in np.flatnonzero(promoted):
      prev_c, prev_j = [(pc, pj) for pc in range(c) for pj in range(K) if net[pc, pj] == ids[j]][-1]
      saved, meta = saved_networks(workdir, prev_c, pop)
      assert meta["network"][prev_j] == ids[j]
      leaf = lambda tree, i: [np.asarray(x)[i] for x in jax.tree.leaves(tree)]  # noqa: E731
      for a, b in zip(leaf(pop, j), leaf(saved, prev_j), strict=True):
        np.testing.assert_array_equal(a, b)
      assert steps[j] == STAGE * stage[prev_c, prev_j]
      counts = [np.asarray(x)[j] for x in jax.tree.leaves(pop.opt_state) if np.ndim(x) == 1]
      assert STAGE * stage[prev_c, prev_j] in counts  # the schedule's step count came along
      # Trained one more stage in cycle c: the step advanced, the weights moved.
      after, _ = saved_networks(workdir, c, pop)
      assert int(np.asarray(after.step)[j]) == STAGE * stage[c, j]
      assert not np.array_equal(
        np.asarray(after.params["classifier"]["kernel"])[j],
        np.asarray(pop.params["classifier"]["kernel"])[j],
      )
      checked += 1
  assert checked == sum(int(np.asarray(s.slot_promoted).sum()) for s, _, _ in built) >= 2


@pytest.mark.slow  # end to end
def test_kill_between_weights_and_search_state_then_resume_is_exact(full_run, make_config):
  """Killed after cycle KILLED_IN's networks were saved, before its search state: the rerun
  repeats that cycle (overwriting its weights), promotes from them in the next, and ends
  bit-identical to the uninterrupted run."""
  workdir_full, summary_full, _, killed = full_run
  assert not (killed / "summary.json").exists()
  summary = main.run_experiment(make_config(), str(killed))
  with np.load(killed / "search.npz") as a, np.load(workdir_full / "search.npz") as b:
    for key in b.files:
      np.testing.assert_array_equal(a[key], b[key])
  for key in ("found_architecture", "found_val_accuracy", "cost_per_cycle", "networks_trained"):
    assert summary[key] == summary_full[key]
  like = jax.device_get(full_run[2][0][2])
  last_a, _ = saved_networks(killed, CYCLES, like)
  last_b, _ = saved_networks(workdir_full, CYCLES, like)
  for a, b in zip(jax.tree.leaves(last_a), jax.tree.leaves(last_b), strict=True):
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
  "overrides, match",
  [
    ({"population.size": 5}, "must equal sum"),
    ({"data.val_size": 0}, "never the test"),
    ({"num_steps": 7}, "multiple of 3"),
    ({"econas.cycles": 0}, "cycles must be >= 1"),
    ({"econas.max_age": 1}, "max_age must be >= 2"),
    ({"econas.initial_size": K + 1}, "initial_size must be in"),
    ({"econas.parents": (1, 1)}, "parents must be 3 counts"),
    ({"model.arch": "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"}, "array build"),
    ({"econas.build": "both"}, "econas.build='both'; valid: array, fixed"),
    ({"econas.warm_start": "accuracy"}, "a zero-cost measure"),
    ({"econas.warm_start": "synflow", "econas.warm_start_pool": 2}, "warm_start_pool=2"),
    ({"econas.warm_start": "synflow", "econas.warm_start_net": "c2"}, "zero_cost_net must be"),
    ({"econas.warm_start": "naswot", "econas.warm_start_batch": 1}, "NASWOT's kernel"),
  ],
)
def test_bad_config_is_refused(make_config, overrides, match):
  with pytest.raises(ConfigError, match=match):
    econas_search.validate_config(make_config(**overrides))


def test_a_model_that_is_not_a_space_is_refused(tiny_cifar_dir, tmp_path):
  c = tiny_method_config(f"{EXPERIMENT}:smoke", tiny_cifar_dir, tmp_path, **{"population.size": K})
  with pytest.raises(ConfigError, match="array build"):
    econas_search.validate_config(c)


def test_missing_table_is_refused_before_anything_is_written(make_config, tmp_path):
  workdir = tmp_path / "run"
  with pytest.raises(DataError, match="nasbench201"):
    main.run_experiment(make_config(**{"econas.table_dir": str(tmp_path)}), str(workdir))
  assert not workdir.exists()


def test_variants():
  from jaxml import config_cli

  rnd = config_cli.load_config_file(f"{EXPERIMENT}:cpu,random")
  cpu = config_cli.load_config_file(f"{EXPERIMENT}:cpu")
  assert rnd.econas.random_children and not cpu.econas.random_children
  rnd.econas.random_children = False
  assert rnd == cpu  # the baseline differs in nothing else: same schedule and budget
  warm = config_cli.load_config_file(f"{EXPERIMENT}:cpu,warm")
  assert warm.econas.warm_start == "synflow" and warm.econas.warm_start_pool == 64
  warm.econas.update(warm_start="", warm_start_pool=cpu.econas.warm_start_pool)
  assert warm == cpu
  with pytest.raises(ConfigError, match="exclude"):
    config_cli.load_config_file(f"{EXPERIMENT}:smoke,cpu")


def test_fixed_builds_need_nb201(make_config):
  c = make_config(**{"econas.build": "fixed"})
  c.model.name = "econas_cells"
  with pytest.raises(ConfigError, match="build='fixed' trains NAS-Bench-201"):
    econas_search.validate_config(c)


FIXED = {"econas.build": "fixed"}
WARM = {
  "econas.warm_start": "synflow",
  "econas.warm_start_pool": 6,
  "econas.warm_start_net": "c4r4n1",
}


@pytest.fixture(scope="module")
def fixed_run(make_config, tmp_path_factory):
  """The smoke search through fixed builds with a zero-cost warm start, and a copy of its
  workdir as a kill -9 would leave it right after cycle KILLED_IN's search state was saved."""
  workdir = tmp_path_factory.mktemp("econas_fixed")
  killed = tmp_path_factory.mktemp("econas_fixed_killed") / "run"
  save = checkpoint.Checkpointer.save

  def save_and_snapshot(self, step, state, metadata=None, force=False):
    save(self, step, state, metadata, force)
    if self.directory.endswith("checkpoints") and step == (KILLED_IN + 1) * STAGE:
      shutil.copytree(workdir, killed)

  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(checkpoint.Checkpointer, "save", save_and_snapshot)
    summary = main.run_experiment(make_config(**FIXED, **WARM), str(workdir))
  return workdir, summary, killed


@pytest.mark.slow  # end to end
def test_fixed_builds_search_and_warm_start(fixed_run):
  """Same schedule and bookkeeping as the array build; the initial networks are the zero-cost
  picks; each network's checkpoint holds its last stage."""
  workdir, summary, _ = fixed_run
  assert summary["build"] == "fixed" and summary["trainings"] == INITIAL + K * CYCLES
  with np.load(workdir / "search.npz") as f:
    stage, net, enc, val = f["stage"], f["network"], f["encoding"], f["val"]
  assert (stage[0, :INITIAL] == 1).all() and net[0, INITIAL] == -1 and np.isnan(val[0, INITIAL])
  assert np.isfinite(val[stage > 0]).all()
  warm = summary["warm_start"]
  assert warm["measure"] == "synflow" and warm["pool"] <= 6 and len(warm["picked"]) == INITIAL
  assert warm["picked_scores"] == sorted(warm["picked_scores"], reverse=True)
  assert [E.to_string(e) for e in enc[0, :INITIAL]] == warm["picked"]
  kept = sorted(int(d.name) for d in (workdir / "networks").iterdir())
  assert kept and set(kept) <= set(net[stage > 0].tolist())
  for n in kept:  # the newest stage saved is the network's last training
    with checkpoint.Checkpointer(workdir / "networks" / f"{n:06d}") as ckpt:
      assert ckpt.latest_step() == stage[net == n].max()


@pytest.mark.slow  # end to end
def test_fixed_builds_killed_run_resumes_exactly(fixed_run, make_config):
  workdir_full, summary_full, killed = fixed_run
  assert not (killed / "summary.json").exists()
  summary = main.run_experiment(make_config(**FIXED, **WARM), str(killed))
  with np.load(killed / "search.npz") as a, np.load(workdir_full / "search.npz") as b:
    for key in b.files:
      np.testing.assert_array_equal(a[key], b[key])
  for key in ("found_architecture", "found_val_accuracy", "cost_per_cycle", "warm_start"):
    assert summary[key] == summary_full[key]
