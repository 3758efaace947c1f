"""PC-NAS end to end (jaxml.methods.pcnas) on tiny CIFAR data and a synthetic NB201 table: the
stages shrink the pool to whole cells keeping exactly the top P, the outputs, kill/resume
equality, bad configs, and the experiment file's variants."""

import json

import jax
import numpy as np
import pytest
from train_fixtures import REPO_ROOT, Killed, final_params, set_path, write_conv_count_table

from jaxml import config_cli, experiment, main
from jaxml.errors import ConfigError, DataError
from jaxml.methods import pcnas
from jaxml.methods.pcnas.controller import stage_ends
from jaxml.search.pcnas_pool import PartialModelPool
from jaxml.spaces import NB201Space
from jaxml.spaces import nb201_encoding as E

CONFIG = REPO_ROOT / "experiments" / "pcnas" / "nb201_cifar10.py"
SPOS_CONFIG = REPO_ROOT / "experiments" / "spos" / "nb201_cifar10.py"
TRUNKS = 7  # 14 steps in trunks of 2: stage 0 = trunks 0-1, stages 1..5 = trunks 2..6


@pytest.fixture(scope="module")
def table(tmp_path_factory):
  d = tmp_path_factory.mktemp("nb201_table")
  return str(d), write_conv_count_table(d)


@pytest.fixture(scope="module")
def tiny(table, tiny_cifar_dir, tmp_path_factory):
  cache = tmp_path_factory.mktemp("pcnas_cache")

  def make(**overrides):
    c = config_cli.load_config_file(f"{CONFIG}:smoke")
    c.model.update(channels=2, cells_per_stage=1)
    c.data.update(dir=str(tiny_cifar_dir), cache_dir=str(cache), use_tfds=False, val_size=60)
    c.data.update(sample_ratio=1.0, resolution=8)
    c.pcnas.update(table_dir=table[0], calib_batches=1, calib_batch_size=8, score_val_size=20)
    c.pcnas.update(rank_random=10, rank_top=2)
    c.update(batch_size=20, eval_batch_size=50, num_steps=2 * TRUNKS, checkpoint_every_steps=3)
    c.progress = False
    for k, v in overrides.items():
      set_path(c, k, v)
    return c

  return make


@pytest.fixture(scope="module")
def full_run(tiny, tmp_path_factory):
  workdir = tmp_path_factory.mktemp("pcnas_full")
  return workdir, main.run_experiment(tiny(), str(workdir))


@pytest.mark.slow  # an end-to-end run
def test_stages_shrink_the_pool_keeping_exactly_the_top_p(full_run, table):
  workdir, summary = full_run
  p = 2
  ends = stage_ends(TRUNKS, 6, 1)
  with np.load(workdir / "trunks.npz") as f:
    h = {k: f[k] for k in f.files}
  assert h["pool_fixed"].tolist() == [0, 1, 2, 3, 4, 5, 6]  # after each trunk
  for s, t in enumerate(ends):
    live, pot = h["candidate_live"][t], h["candidate_potential"][t]
    usable = live & np.isfinite(pot)
    assert usable.sum() == (5 if s == 0 else p * 5)  # P x N extensions (one member at first)
    top = np.argsort(-np.where(usable, pot, -np.inf), kind="stable")[:p]
    np.testing.assert_array_equal(h["pool_prefixes"][t], h["candidate_prefixes"][t][top])
    np.testing.assert_array_equal(h["pool_potential"][t], pot[top])
    if s:  # every kept partial model extends a member of the previous pool
      before = {tuple(r[:s]) for r in h["pool_prefixes"][ends[s - 1]]}
      assert all(tuple(r[:s]) in before for r in h["pool_prefixes"][t])
  final = h["pool_prefixes"][-1]
  assert summary["final_pool"] == [E.to_string(e) for e in final]
  acc = table[1]
  assert summary["returned_arch"] == E.to_string(final[0])
  assert summary["returned_true_accuracy"] == pytest.approx(acc[E.encoding_to_index(final[0])])
  assert summary["returned_true_rank"] == int(np.sum(acc > acc[E.encoding_to_index(final[0])])) + 1
  # The oracle (exact potentials) on this table takes the all-3x3 cell.
  assert summary["oracle_arch"] == E.to_string([3] * 6)


@pytest.mark.slow  # an end-to-end run
def test_outputs(full_run):
  workdir, summary = full_run
  for name in ("summary.json", "trunks.npz", "ranking.json", "metrics.jsonl"):
    assert (workdir / name).exists(), name
  for name in ("pcnas_stages.png", "rank_scatter.png", "curves.png"):
    assert (workdir / "plots" / name).exists(), name
  saved = json.loads((workdir / "summary.json").read_text())
  assert saved["method"] == "pcnas" and saved["returned_arch"] == summary["returned_arch"]
  assert [s["fixed_layers"] for s in summary["stages"]] == [1, 2, 3, 4, 5, 6]
  assert len(summary["stages"][0]["kept"]) == 2 and summary["stages"][0]["kept"][0].endswith("*")
  ranking = json.loads((workdir / "ranking.json").read_text())
  assert len(ranking["scores"][0]) == 12  # 10 random cells + the table's 2 best
  assert set(summary["ranking"]) >= {"kendall_all", "spearman_all", "precision_at_top5pct"}


def _kill_at_save(run, n: int, monkeypatch) -> None:
  """Calls `run()` and kills it right after its n-th checkpoint."""
  original, calls = experiment.PopulationRun.save, {"n": 0}

  def save_then_die(self, step, state, metadata):
    original(self, step, state, metadata)
    calls["n"] += 1
    if calls["n"] == n:
      raise Killed()

  monkeypatch.setattr(experiment.PopulationRun, "save", save_then_die)
  with pytest.raises(Killed):
    run()
  monkeypatch.setattr(experiment.PopulationRun, "save", original)


@pytest.mark.slow  # an end-to-end run
def test_killed_run_resumes_to_the_uninterrupted_end(full_run, tiny, tmp_path, monkeypatch):
  workdir_full, summary_full = full_run
  run = lambda: main.run_experiment(tiny(), str(tmp_path))  # noqa: E731
  # Saves at steps 2, 3, 4, 6, 8, 9, ...: the 6th (step 9) is inside trunk 4 (stage 3), with a
  # pool already shrunk three times.
  _kill_at_save(run, 6, monkeypatch)
  summary = run()
  with np.load(tmp_path / "trunks.npz") as a, np.load(workdir_full / "trunks.npz") as b:
    assert set(a.files) == set(b.files)
    for key in a.files:
      np.testing.assert_array_equal(a[key], b[key])
  for key in ("final_pool", "final_pool_potential", "returned_arch", "ranking", "stages"):
    assert summary[key] == summary_full[key], key
  for a, b in zip(final_params(tmp_path), final_params(workdir_full), strict=True):
    np.testing.assert_array_equal(a, b)


def test_pool_sampler_follows_the_pool_data():
  search = PartialModelPool(NB201Space(), pool_size=3)
  data = {
    "pool": np.array([[4, 2, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0], [3, 3, 0, 0, 0, 0]], np.int32),
    "size": np.int32(2),
    "fixed": np.int32(2),
  }
  paths = np.asarray(
    jax.jit(pcnas.PoolPathSampler(search), static_argnums=1)(jax.random.key(0), 64, data)
  )
  assert {tuple(r[:2]) for r in paths} == {(4, 2), (1, 1)}


@pytest.mark.parametrize(
  "overrides, match",
  [
    ({"model.name": "resnet20"}, "model.name"),
    ({"population.size": 2}, "population.size"),
    ({"pcnas.pool_size": 0}, "pool_size"),
    ({"pcnas.completions": 0}, "completions"),
    ({"pcnas.stage_trunks": 3}, "stages need at least 16"),
    ({"pcnas.trunk_epochs": 1.0, "pcnas.trunk_steps": 0}, "unit"),
    ({"pcnas.max_flops": -1.0}, "max_flops"),
    ({"pcnas.rank_random": 5}, "rank_random"),
    ({"pcnas.dataset": "mnist"}, "pcnas.dataset"),
    ({"pcnas.sub_batches": 3}, "sub_batches"),
    ({"data.val_size": 0}, "val_size"),
  ],
)
def test_bad_config_is_refused(overrides, match, tmp_path):
  c = config_cli.load_config_file(f"{CONFIG}:smoke")
  for k, v in overrides.items():
    set_path(c, k, v)
  with pytest.raises(ConfigError, match=match):
    main.run_experiment(c, str(tmp_path / "run"))
  assert not (tmp_path / "run").exists()


def test_missing_table_is_refused_before_anything_is_written(tiny, tmp_path):
  with pytest.raises(DataError, match="nasbench201"):
    main.run_experiment(tiny(**{"pcnas.table_dir": str(tmp_path / "none")}), str(tmp_path / "r"))
  assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("variant", [None, "cpu"])
def test_supernet_schedule_is_spos(variant):
  """PC-NAS trains SPOS's supernet (same data, model, optimiser, epochs, scoring)."""
  arg = f":{variant}" if variant else ""
  c = config_cli.load_config_file(f"{CONFIG}{arg}")
  s = config_cli.load_config_file(f"{SPOS_CONFIG}{arg}")
  for key in ("data", "model", "optim", "batch_size", "num_epochs", "num_steps"):
    assert c[key] == s[key], key
  for key in pcnas.SHARED_WITH_SPOS:
    if key != "paths_per_call":
      assert c.pcnas[key] == s.spos[key], key
  assert c.method == "pcnas" and "spos" not in c
