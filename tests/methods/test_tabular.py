"""The tabular NAS method end to end on a synthetic NAS-Bench-201 table, and its config errors."""

import json
import pathlib

import numpy as np
import pytest

from jaxml import main as jaxml_main
from jaxml.errors import ConfigError, DataError
from jaxml.methods import tabular
from jaxml.metrics.writers import read_jsonl
from jaxml.nasbench import nb201
from jaxml.search import driver
from jaxml.spaces import nb201_encoding as E

CONFIG = pathlib.Path(__file__).resolve().parents[2] / "experiments/tabular/nb201_cifar10.py"


def load_config(arg=None):
  from jaxml import config_cli

  return config_cli.load_config_file(f"{CONFIG}:{arg}" if arg else str(CONFIG))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  """A synthetic table: accuracy grows with the number of 3x3 convs, plus a small unique jitter
  (so there is one optimum), different per dataset."""
  encs = E.enumerate_all()
  jitter = np.random.default_rng(0).permutation(15625) / 15625
  base = (encs == 3).sum(1) + 0.5 * (encs == 2).sum(1)
  acc = np.stack([80 + 2 * base + jitter, 50 + 3 * base + jitter[::-1], 20 + 4 * base - jitter])
  d = tmp_path_factory.mktemp("data")
  (d / "nasbench201").mkdir()
  nb201.write_csv(d / "nasbench201" / nb201.FILENAME, acc)
  return str(d), acc


def smoke_config(data_dir, **overrides):
  c = load_config("smoke")
  c.data.dir = data_dir
  c.num_seeds = 6
  for k, v in overrides.items():
    parent = c
    *path, leaf = k.split(".")
    for p in path:
      parent = parent[p]
    parent[leaf] = v
  return c


@pytest.mark.slow  # end to end
def test_end_to_end_smoke(data_dir, tmp_path):
  d, acc = data_dir
  config = smoke_config(d)
  summary = jaxml_main.run_experiment(config, str(tmp_path))
  on_disk = json.loads((tmp_path / "summary.json").read_text())
  assert on_disk == json.loads(json.dumps(summary))
  assert summary["method"] == "tabular"
  assert summary["optimum"] == pytest.approx(acc[0].max(), rel=1e-6)
  assert (tmp_path / "plots" / "tabular.png").stat().st_size > 1000
  assert json.loads((tmp_path / "config.json").read_text())["methods"] == list(config.methods)
  for name in config.methods:
    s = summary[name]
    for key in ("mean_test", "std_test", "frac_optimum", "queries", "seeds", "wall_s"):
      assert key in s, (name, key)
    assert s["queries"] == 50 and s["seeds"] == 6
    assert s["mean_cifar10"] == s["mean_test"]
    assert acc[1].min() <= s["mean_cifar100"] <= acc[1].max()
    assert acc[2].min() <= s["mean_imagenet16_120"] <= acc[2].max()
    assert 0.0 <= s["frac_optimum"] <= 1.0
    assert s["mean_test"] <= summary["optimum"] + 1e-4
    assert set(s["sweep"]) == {"25", "50"}
    assert s["sweep"]["25"]["mean_test"] <= s["sweep"]["50"]["mean_test"] + 1e-6
  rows = read_jsonl(tmp_path / "metrics.jsonl")
  assert sorted((r["method"], r["step"]) for r in rows) == sorted(
    (m, n) for m in config.methods for n in (25, 50)
  )
  # Rerunning the same config on the finished workdir returns its summary without rerunning.
  (tmp_path / "plots" / "tabular.png").unlink()
  assert jaxml_main.run_experiment(config, str(tmp_path)) == on_disk
  assert not (tmp_path / "plots" / "tabular.png").exists()
  assert len(read_jsonl(tmp_path / "metrics.jsonl")) == len(rows)


def test_seed_results_do_not_depend_on_num_seeds(data_dir, tmp_path):
  # Seed i's key is fold_in(seed, i): a 3-seed run is the prefix of a 6-seed run.
  d, _ = data_dir
  evaluate = driver.nb201_evaluator(nb201.load(d))
  search = tabular.algorithm("random", 20)
  small = driver.run_seeds(search, driver.seed_keys(0, 3), evaluate, 20)
  large = driver.run_seeds(search, driver.seed_keys(0, 6), evaluate, 20)
  np.testing.assert_array_equal(small.history, large.history[:3])


def test_algorithms_follow_the_config():
  config = load_config()
  rea = tabular.algorithm("rea", 150, **tabular.hparams(config, "rea"))
  assert (rea.population_size, rea.sample_size, rea.ask_size) == (10, 3, 1)
  spos = tabular.algorithm("spos", 120, **tabular.hparams(config, "spos"))
  assert spos.history_size == 150  # whole generations of 50 covering 120 queries
  assert tabular.algorithm("random", 150).ask_size == 150  # the budget in one batched draw
  reinforce = tabular.algorithm("reinforce", 150, **tabular.hparams(config, "reinforce"))
  assert (reinforce.learning_rate, reinforce.ema_decay, reinforce.ask_size) == (0.01, 0.9, 1)


def test_missing_table_is_a_data_error(tmp_path, monkeypatch):
  from jaxml.data import locate

  monkeypatch.delenv(locate.ENV_VAR, raising=False)
  monkeypatch.setattr(locate, "REPO_ROOT", tmp_path / "repo")
  config = smoke_config(str(tmp_path / "empty"), methods=("random",))
  with pytest.raises(DataError, match="nasbench201"):
    jaxml_main.run_experiment(config, str(tmp_path / "run"))


def test_get_config_variants():
  full = load_config()
  tabular.validate_config(full)
  assert full.method == "tabular" and full.num_seeds == 1000 and full.queries == 150
  assert full.rea.population_size == 10 and full.rea.sample_size == 3
  smoke = load_config("smoke")
  tabular.validate_config(smoke)
  assert smoke.num_seeds == 50 and smoke.queries == 50
  with pytest.raises(ConfigError, match="unknown config arg"):
    load_config("big")


@pytest.mark.parametrize(
  "overrides,match",
  [
    ({"queries": 0}, "queries must be >= 1"),
    ({"num_seeds": 0}, "num_seeds"),
    ({"methods": ("random", "bohb")}, "unknown tabular method 'bohb'"),
    ({"methods": ()}, "non-empty"),
    ({"methods": ("rea", "rea")}, "twice"),
    ({"query_sweep": (25, 0)}, "query_sweep"),
    ({"dataset": "imagenet"}, "config.dataset"),
    ({"rea.population_size": 60}, "population_size=60"),
    ({"rea.sample_size": 20}, "sample_size=20"),
    ({"spos.population_size": 51}, "population_size=51"),
    ({"spos.topk": 0}, "topk"),
    ({"spos.mutation_prob": 1.5}, "mutation_prob"),
    ({"reinforce.learning_rate": 0.0}, "learning_rate"),
    ({"reinforce.ema_decay": 1.0}, "ema_decay"),
    ({"num_seeds": 10**6, "query_sweep": (100,)}, "would not fit in memory"),
  ],
)
def test_config_errors(overrides, match):
  config = load_config("smoke")
  for k, v in overrides.items():
    parent = config
    *path, leaf = k.split(".")
    for p in path:
      parent = parent[p]
    parent[leaf] = v
  with pytest.raises(ConfigError, match=match):
    tabular.validate_config(config)


def test_population_larger_than_queries_is_fine_for_unselected_methods():
  config = load_config("smoke")
  config.methods = ("random",)
  config.spos.population_size = 500
  tabular.validate_config(config)
