"""SPOS end to end on tiny supernets (NAS-Bench-201 with a synthetic table, the ShuffleNetV2
space): outputs, the FLOPs limit, kill / resume equality (in training and in the search) and
config refusals."""

import json

import jax
import numpy as np
import pytest
from train_fixtures import (
  REPO_ROOT,
  final_params,
  run_killed_after_first_save,
  set_path,
  write_conv_count_table,
)

from jaxml import config_cli, main, oneshot
from jaxml.errors import ConfigError
from jaxml.methods import spos
from jaxml.methods.spos import search
from jaxml.nasbench import nb201
from jaxml.spaces import NB201Space
from jaxml.spaces import nb201_encoding as E

NB201_CONFIG = REPO_ROOT / "experiments" / "spos" / "nb201_cifar10.py"
SHUFFLE_CONFIG = REPO_ROOT / "experiments" / "spos" / "shufflenet_cifar10.py"


@pytest.fixture(scope="module")
def table_dir(tmp_path_factory):
  d = tmp_path_factory.mktemp("nb201_table")
  return str(d), write_conv_count_table(d)


def _tiny(path, table, data_dir, cache, **overrides):
  """The experiment's `smoke` config shrunk further: C 2 / width x0.125, 8 px, tiny data."""
  c = config_cli.load_config_file(f"{path}:smoke")
  if c.spos.space == "nb201":
    c.model.update(channels=2, cells_per_stage=1)
    c.spos.table_dir = table
  c.data.update(
    dir=str(data_dir), cache_dir=str(cache), use_tfds=False, val_size=100, sample_ratio=1.0
  )
  c.data.resolution = 8
  c.update(batch_size=20, eval_batch_size=50, num_epochs=2.0, checkpoint_every_steps=3)
  c.progress = False
  for k, v in overrides.items():
    set_path(c, k, v)
  return c


@pytest.fixture(scope="module")
def tiny(table_dir, tiny_cifar_dir, tmp_path_factory):
  cache = tmp_path_factory.mktemp("spos_cache")
  return lambda path=NB201_CONFIG, **o: _tiny(path, table_dir[0], tiny_cifar_dir, cache, **o)


@pytest.fixture(scope="module")
def limit():
  """A FLOPs limit that rejects about half of the tiny space."""
  space = NB201Space(2, 1, 10, 8)
  return float(np.median(space.flops(space.enumerate()[::7])))


@pytest.fixture(scope="module")
def full_run(tiny, limit, tmp_path_factory):
  workdir = tmp_path_factory.mktemp("spos_full")
  return workdir, main.run_experiment(tiny(**{"spos.max_flops": limit}), str(workdir))


@pytest.mark.slow  # an end-to-end run
def test_outputs_ranking_and_search(full_run, table_dir, limit):
  workdir, summary = full_run
  for name in ("summary.json", "ranking.json", "plots/rank_scatter.png", "plots/evolution.png"):
    assert (workdir / name).exists(), name
  assert json.loads((workdir / "summary.json").read_text())["method"] == "spos"
  ranking = json.loads((workdir / "ranking.json").read_text())
  acc = table_dir[1]
  # 12 random cells and the table's 4 best, scored by both supernets.
  idx = E.encoding_to_index(np.stack([E.from_string(a) for a in ranking["architectures"]]))
  assert len(idx) == 16 and set(np.argsort(-acc)[:4]) <= set(idx.tolist())
  np.testing.assert_allclose(ranking["true_accuracy"], acc[idx], rtol=1e-6)
  scores = np.asarray(ranking["scores"])
  assert scores.shape == (2, 16) and ((scores >= 0) & (scores <= 1)).all()
  m = summary["ranking"]["metrics_per_copy"][0]
  for key in ("kendall_random", "spearman_all", "precision_at_top5pct", "top1_true_accuracy"):
    assert key in m
  search = summary["search"]
  space = NB201Space(2, 1, 10, 8)
  for copy in search["copies"]:
    assert 1 <= len(copy["top"]) <= 3
    fits = [r["fitness"] for r in copy["top"]]
    assert fits == sorted(fits, reverse=True)
    for r in copy["top"]:
      enc = space.from_string(r["architecture"])
      assert r["flops"] == space.flops(enc) <= limit  # the constraint held
      assert r["true_accuracy"] == pytest.approx(acc[E.encoding_to_index(enc)], rel=1e-6)
  with np.load(workdir / "search" / "copy0.npz") as f:
    history, gens = f["history"], int(f["generation"])
  assert gens == 2 and history.shape == (12, 6)
  assert (space.flops(history) <= limit).all()


@pytest.mark.slow  # an end-to-end run
def test_killed_run_resumes_to_the_uninterrupted_end(full_run, tiny, limit, tmp_path, monkeypatch):
  workdir_full, summary_full = full_run
  run = lambda: main.run_experiment(tiny(**{"spos.max_flops": limit}), str(tmp_path))  # noqa: E731
  run_killed_after_first_save(run, monkeypatch)  # killed in supernet training
  original, calls = search.write_npz_atomic, []

  def save_then_die(path, arrays):  # killed after the search's first generation
    original(path, arrays)
    calls.append(path)
    raise KeyboardInterrupt

  monkeypatch.setattr(search, "write_npz_atomic", save_then_die)
  with pytest.raises(KeyboardInterrupt):
    run()
  monkeypatch.setattr(search, "write_npz_atomic", original)
  summary = run()
  assert summary["ranking"] == summary_full["ranking"]
  assert summary["search"] == summary_full["search"]
  for name in ("copy0.npz", "copy1.npz"):
    with np.load(tmp_path / "search" / name) as a, np.load(workdir_full / "search" / name) as b:
      for key in ("history", "fitness"):
        np.testing.assert_array_equal(a[key], b[key])
  for a, b in zip(final_params(tmp_path), final_params(workdir_full), strict=True):
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("sampling", spos.SAMPLINGS)
def test_build_sampler_draws_valid_paths(tiny, table_dir, sampling):
  """Each `spos.sampling` builds its sampler (end-to-end training with a sampler is above;
  the samplers' distributions are tested in tests/oneshot/)."""
  c = tiny(**{"spos.sampling": sampling})
  space = spos.build_space(c, 10)
  costs = oneshot.PathCosts.build(space)
  sampler, canonical = spos.build_sampler(c, space, costs, nb201.load(table_dir[0]))
  paths = np.asarray(sampler(jax.random.key(0), 64))
  space.validate(paths)
  assert (canonical is not None) == (sampling == "unique")
  if sampling == "flops_bins":
    assert sampler.edges[0] <= costs.flops(paths).min() and len(sampler.edges) == 8


@pytest.mark.slow  # an end-to-end run
def test_shufflenet_smoke_runs(tiny, tmp_path):
  """The ShuffleNetV2 space through the same method (flops_bins sampling, no ground truth)."""
  c = tiny(SHUFFLE_CONFIG, **{"spos.sampling": "flops_bins", "population.size": 1})
  c.spos.update(population_size=4, topk=2, generations=1)
  summary = main.run_experiment(c, str(tmp_path))
  assert "ranking" not in summary and summary["space"] == "SPOS ShuffleNetV2"
  top = summary["search"]["copies"][0]["top"]
  assert top and top[0]["architecture"].startswith("(") and "true_accuracy" not in top[0]


@pytest.mark.parametrize(
  "overrides, match",
  [
    ({"spos.space": "darts"}, "spos.space"),
    ({"model.name": "resnet20"}, "model.name"),
    ({"model.arch": "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"}, "model.arch"),
    ({"spos.sampling": "gumbel"}, "spos.sampling"),
    ({"spos.sub_batches": 3}, "sub_batches"),
    ({"spos.rank_random": 5}, "rank_random"),
    ({"spos.population_size": 1}, "population_size"),
    ({"spos.topk": 7}, "topk"),
    ({"data.val_size": 0}, "val_size"),
    ({"spos.dataset": "mnist"}, "spos.dataset"),
    ({"spos.max_flops": -1.0}, "max_flops"),
  ],
)
def test_bad_configs_are_refused(tiny, overrides, match, tmp_path):
  c = tiny(**overrides)
  with pytest.raises(ConfigError, match=match):
    main.run_experiment(c, str(tmp_path / "w"))
  assert not (tmp_path / "w").exists()


def test_unique_sampling_needs_nb201(tiny):
  c = tiny(SHUFFLE_CONFIG, **{"spos.sampling": "unique"})
  with pytest.raises(ConfigError, match="unique"):
    spos.validate_config(c)
