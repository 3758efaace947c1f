"""The EcoNAS proxy study (`jaxml.methods.proxy_study`) end to end on 4 cells with a tiny proxy, a
killed and resumed study, the stratified choice of architectures, and its config errors."""

import copy
import json
import pathlib

import numpy as np
import pytest
import train_fixtures

from jaxml import configs
from jaxml import main as jaxml_main
from jaxml.errors import ConfigError
from jaxml.methods import proxy_study
from jaxml.metrics import zero_cost
from jaxml.nasbench import nb201
from jaxml.spaces import nb201_encoding as E

# End-to-end runs are marked `slow` one by one (CI runs them once, after the fast tier); the
# pure functions, toy steps and config refusals here are fast-tier tests.

EXPERIMENT = str(train_fixtures.REPO_ROOT / "experiments/econas/proxy_study_nb201.py")


@pytest.fixture(scope="module")
def table_dir(tmp_path_factory):
  """A synthetic table: accuracy grows with the 3x3 convs plus a unique jitter; cells that compute
  nothing get 10 %, as in the real table."""
  encs = E.enumerate_all()
  jitter = np.random.default_rng(0).permutation(15625) / 15625
  acc = 80 + 2 * (encs == 3).sum(1) + (encs == 2).sum(1) + jitter
  dead = np.array([not proxy_study.computes_something(e) for e in encs])
  acc = np.where(dead, 10.0, acc)
  d = tmp_path_factory.mktemp("table")
  (d / "nasbench201").mkdir()
  nb201.write_csv(d / "nasbench201" / nb201.FILENAME, np.stack([acc, acc, acc]))
  return d


def study_config(table_dir, tiny_cifar_dir, tmp_path_factory, **overrides):
  c = train_fixtures.tiny_method_config(
    f"{EXPERIMENT}:smoke", tiny_cifar_dir, tmp_path_factory.mktemp("cache")
  )
  c.model = configs.default_model_config("nb201")
  c.proxy_study.update(
    proxies="c4r4s0e0.4n1", num_archs=4, eval_points=2, table_dir=str(table_dir), precision_k=2
  )
  c.update(batch_size=8, eval_batch_size=20, num_steps=-1)
  c.population.update(size=4, mapping="vmap", fast_compile=True)
  for k, v in overrides.items():
    train_fixtures.set_path(c, k, v)
  return c


def fake_scores(space, encodings, images, labels, seed=0, **kwargs):
  """Stands in for the zero-cost scores (tested in tests/metrics/test_zero_cost.py): the
  study's plumbing is what this file tests, and their array-build compile takes minutes."""
  del images, labels, seed, kwargs
  p = np.asarray(space.params(encodings), np.float64)
  return {name: p + i for i, name in enumerate(zero_cost.MEASURES)}


@pytest.fixture(scope="module")
def finished(table_dir, tiny_cifar_dir, tmp_path_factory):
  mp = pytest.MonkeyPatch()
  mp.setattr(zero_cost, "nb201_scores", fake_scores)
  config = study_config(table_dir, tiny_cifar_dir, tmp_path_factory)
  workdir = tmp_path_factory.mktemp("study")
  summary = jaxml_main.run_experiment(config, str(workdir))
  mp.undo()
  return config, workdir, summary


@pytest.mark.slow  # end to end
def test_study_end_to_end(finished):
  _, workdir, summary = finished
  rows = {r["proxy"]: r for r in summary["rows"]}
  assert list(rows) == ["c4r4s0e0.4n1", *zero_cost.MEASURES]
  train = rows["c4r4s0e0.4n1"]
  per_copy = json.loads((workdir / "proxies/c4r4s0e0.4n1/summary.json").read_text())
  # A proxy's scores are its copies' final val accuracies, one copy per architecture.
  assert train["scores"] == per_copy["val_accuracy_per_copy"]
  assert per_copy["encodings"] == [E.from_string(a).tolist() for a in summary["architectures"]]
  assert 0 < train["cost_fraction"] < 1e-3 and 0 < train["step_time_s"] < train["wall_time_s"]
  for key in ("spearman", "kendall", "top_half_spearman", "precision_at_2"):
    assert key in train
  # #params ranks against the synthetic truth exactly as rank.spearman says.
  p = rows["params"]
  assert p["spearman"] == pytest.approx(
    float(np.corrcoef(np.argsort(np.argsort(p["scores"])),
                      np.argsort(np.argsort(summary["ground_truth"])))[0, 1]), abs=1e-5
  )  # fmt: skip
  for name in ("table.md", "plots/cost_vs_spearman.png", "plots/rank_scatter_synflow.png"):
    assert (workdir / name).is_file(), name
  assert (workdir / "plots/rank_scatter_c4r4s0e0.4n1.png").is_file()
  assert json.loads((workdir / "summary.json").read_text()) == json.loads(json.dumps(summary))


@pytest.mark.slow  # end to end
def test_killed_study_resumes_to_the_same_table(finished, table_dir, tiny_cifar_dir,
                                                tmp_path_factory, monkeypatch):  # fmt: skip
  config, _, summary = finished
  monkeypatch.setattr(zero_cost, "nb201_scores", fake_scores)
  workdir = tmp_path_factory.mktemp("killed")
  run = lambda: jaxml_main.run_experiment(config, str(workdir))
  # Killed right after the proxy run's first checkpoint (the end of its first of 2 trunks).
  train_fixtures.run_killed_after_first_save(run, monkeypatch)
  assert not (workdir / "summary.json").exists()
  resumed = run()
  # Everything but the times (measured in this run, compiles included) is as uninterrupted.
  timed = ("wall_time_s", "step_time_s")
  untimed = lambda rows: [{k: v for k, v in r.items() if k not in timed} for r in rows]
  assert untimed(resumed["rows"]) == untimed(summary["rows"])
  # A finished study re-run reads its parts back.
  assert run()["rows"] == resumed["rows"]


@pytest.mark.slow  # end to end
def test_fixed_builds_score_each_cell_in_its_own_run(finished, tmp_path_factory, monkeypatch):
  """`build='fixed'`: one run per cell (only its ops). Cell 0 starts from array copy 0's weights
  of its ops and sees the same batches, so it ends at the same val accuracy. Two of the study's
  four cells keep the test to two compiles."""
  config, _, summary = finished
  encodings = np.asarray([E.from_string(a) for a in summary["architectures"][:2]])
  truth = np.asarray(summary["ground_truth"][:2])
  monkeypatch.setattr(proxy_study, "select_archs", lambda *args: (encodings, truth))
  config = copy.deepcopy(config)
  config.proxy_study.update(build="fixed", zero_cost=False, num_archs=2, precision_k=1)
  config.population.size = 2
  workdir = tmp_path_factory.mktemp("fixed")
  fixed = jaxml_main.run_experiment(config, str(workdir))
  runs = sorted((workdir / "proxies/c4r4s0e0.4n1").glob("arch*/summary.json"))
  assert len(runs) == 2 and fixed["architectures"] == summary["architectures"][:2]
  per_run = [json.loads(r.read_text())["val_accuracy_per_copy"] for r in runs]
  assert fixed["rows"][0]["scores"] == [v[0] for v in per_run] and all(len(v) == 1 for v in per_run)
  assert per_run[0][0] == pytest.approx(summary["rows"][0]["scores"][0], abs=0.011)
  # The steps' own time is part of the proxy's wall time (which adds compiles, set-up, eval).
  row = fixed["rows"][0]
  assert 0 < row["step_time_s"] < row["wall_time_s"]
  # Cells checkpoint at their eval points only (the trunk ends: eval_points = 2 here).
  for r in runs:
    steps = sorted(int(d.name) for d in (r.parent / "checkpoints").iterdir() if d.name.isdigit())
    total = json.loads(r.read_text())["steps"]
    assert steps == [-(-total // 2), total]


def test_stratified_choice(table_dir):
  table = nb201.load(str(table_dir))
  encs, acc = proxy_study.select_archs(table, 10, seed=1)
  assert encs.shape == (10, 6) and np.all(np.diff(acc) >= 0)
  assert all(proxy_study.computes_something(e) for e in encs)
  assert len({tuple(e) for e in encs}) == 10
  # Seeded, and spread over the whole range of the cells that compute something.
  np.testing.assert_array_equal(proxy_study.select_archs(table, 10, seed=1)[0], encs)
  ok = np.asarray(table.values())[np.asarray(table.values()) > 10.0]
  assert acc[0] <= np.quantile(ok, 0.1) and acc[-1] >= np.quantile(ok, 0.9)
  assert not proxy_study.computes_something(np.array([0, 3, 3, 0, 3, 0]))  # node 3 cut off
  assert proxy_study.computes_something(np.array([3, 0, 0, 0, 1, 0]))


@pytest.mark.parametrize(
  "key, value, match",
  [
    ("proxy_study.proxies", "c9r0s0e1", "c index"),
    ("proxy_study.num_archs", 3, "must equal proxy_study.num_archs"),
    ("proxy_study.precision_k", 9, "precision_k must be in"),
    ("proxy_study.zero_cost_net", "c0r0s0", "zero_cost_net must be"),
    ("model.arch", "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "leave config.model.arch"),
    ("proxy_study.build", "supernet", "proxy_study.build"),
    ("proxy_study.zero_cost_build", "both", "zero_cost_build='both'"),
  ],
)
def test_config_errors(table_dir, tiny_cifar_dir, tmp_path_factory, key, value, match):
  config = study_config(table_dir, tiny_cifar_dir, tmp_path_factory, **{key: value})
  with pytest.raises(ConfigError, match=match):
    proxy_study.validate_config(config)


def test_a_study_needs_something_to_rank(table_dir, tiny_cifar_dir, tmp_path_factory):
  config = study_config(table_dir, tiny_cifar_dir, tmp_path_factory)
  config.proxy_study.update(proxies="", zero_cost=False)
  with pytest.raises(ConfigError, match="nothing to rank"):
    proxy_study.validate_config(config)


def test_zero_cost_only_study(table_dir, tiny_cifar_dir, tmp_path_factory, monkeypatch):
  """No training proxy: the zero-cost scores alone, at the build asked for (the full N 5
  network's fixed builds on a CPU)."""
  builds = []

  def scores(*args, build="array", **kwargs):
    builds.append(build)
    return fake_scores(*args, **kwargs)

  monkeypatch.setattr(zero_cost, "nb201_scores", scores)
  config = study_config(table_dir, tiny_cifar_dir, tmp_path_factory)
  config.proxy_study.update(proxies="", zero_cost_build="fixed")
  workdir = tmp_path_factory.mktemp("zc_only")
  summary = jaxml_main.run_experiment(config, str(workdir))
  assert builds == ["fixed"] and not (workdir / "proxies").exists()
  assert [r["proxy"] for r in summary["rows"]] == list(zero_cost.MEASURES)
  assert json.loads((workdir / "zero_cost.json").read_text())["build"] == "fixed"


def test_experiment_file_variants():
  from jaxml import config_cli

  for arg in ("", ":smoke", ":gpu"):
    c = config_cli.load_config_file(EXPERIMENT + arg)
    assert c.population.size == c.proxy_study.num_archs
  with pytest.raises(ConfigError, match="exclude each other"):
    config_cli.load_config_file(EXPERIMENT + ":smoke,gpu")
  assert pathlib.Path(EXPERIMENT).is_file()
