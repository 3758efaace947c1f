"""CRNAS end to end on tiny data (every experiment file's `smoke`): outputs, equal FLOPs, the
beam, kill / resume equality across the phases, refused configs, and the retrain config (with
the found MobileNetV2 built from summary.json's overrides)."""

import ast
import json
import shlex

import numpy as np
import pytest
from train_fixtures import REPO_ROOT, final_params, run_killed_after_first_save, set_path

from jaxml import config_cli, main, models
from jaxml.errors import ConfigError
from jaxml.methods.crnas import search as crnas_search
from jaxml.spaces import count_macs

CONFIGS = REPO_ROOT / "experiments" / "crnas"


class Killed(Exception):
  pass


def _tiny(name, data_dir, cache, **overrides):
  c = config_cli.load_config_file(f"{CONFIGS / name}:smoke")
  c.data.update(
    dir=str(data_dir), cache_dir=str(cache), use_tfds=False, val_size=40, sample_ratio=1.0
  )
  c.update(eval_batch_size=20, progress=False)
  for k, v in overrides.items():
    set_path(c, k, v)
  return c


@pytest.fixture(scope="module")
def tiny(tiny_cifar_dir, tmp_path_factory):
  cache = tmp_path_factory.mktemp("crnas_cache")
  return lambda name="resnet18_cifar10.py", **o: _tiny(name, tiny_cifar_dir, cache, **o)


@pytest.fixture(scope="module")
def full_run(tiny, tmp_path_factory):
  workdir = tmp_path_factory.mktemp("crnas_full")
  return workdir, main.run_experiment(tiny(), str(workdir))


def _read(workdir, name):
  return json.loads((workdir / name).read_text())


@pytest.mark.slow  # an end-to-end run
def test_search_outputs_keep_blocks_and_flops(full_run):
  workdir, summary = full_run
  assert _read(workdir, "summary.json") == json.loads(json.dumps(summary))
  assert sum(summary["found_allocation"]) == sum(summary["baseline_allocation"]) == 5
  assert min(summary["found_allocation"]) >= 1
  assert summary["found_macs"] == summary["baseline_macs"] and summary["macs_ratio"] == 1.0
  assert len(summary["found_dilations"]) == 5 and set(summary["found_dilations"]) <= {1, 2, 3}
  stage = _read(workdir, "stage_scores.json")
  # 1-1-2-1 in a 2/2/3/2 supernet: the four single-block moves, all scored, best first.
  assert sorted(stage["allocations"]) == ["1-1-1-2", "1-1-2-1", "1-2-1-1", "2-1-1-1"]
  assert stage["val_accuracy"] == sorted(stage["val_accuracy"], reverse=True)
  assert stage["allocations"][0] == "-".join(map(str, summary["found_allocation"]))
  assert len(set(stage["macs"])) == 1
  beam = _read(workdir, "beam.json")
  assert len(beam["blocks"]) == 5
  for block in beam["blocks"]:
    assert np.isfinite(block["scores"]).sum() == 3  # K = 3 partial architectures per block
  assert beam["best_dilations"] == summary["found_dilations"]
  for phase in ("stage_supernet", "op_supernet"):
    assert (workdir / phase / "checkpoints").is_dir()
    assert summary[phase]["steps"] == 6


@pytest.mark.slow  # an end-to-end run
def test_killed_run_resumes_to_the_uninterrupted_end(full_run, tiny, tmp_path, monkeypatch):
  """Killed in the stage supernet's training, then in the beam search: the resumed run's files
  and weights equal the uninterrupted run's."""
  workdir_full, summary_full = full_run
  run = lambda: main.run_experiment(tiny(), str(tmp_path))  # noqa: E731
  run_killed_after_first_save(run, monkeypatch)
  original = crnas_search.write_json_atomic

  def write_then_die(path, value):
    original(path, value)
    if path.name == "beam.json" and len(value["blocks"]) == 2:
      raise Killed()

  monkeypatch.setattr(crnas_search, "write_json_atomic", write_then_die)
  with pytest.raises(Killed):
    run()
  monkeypatch.setattr(crnas_search, "write_json_atomic", original)
  summary = run()
  drop = lambda s: {k: v for k, v in s.items() if k not in ("stage_supernet", "op_supernet")}  # noqa: E731
  assert drop(summary) == drop(summary_full)
  for name in ("stage_scores.json", "beam.json"):
    assert _read(tmp_path, name) == _read(workdir_full, name), name
  for phase in ("stage_supernet", "op_supernet"):
    for a, b in zip(
      final_params(tmp_path / phase), final_params(workdir_full / phase), strict=True
    ):
      np.testing.assert_array_equal(a, b)


@pytest.mark.slow  # an end-to-end run
def test_resnet50_smoke_searches_bottlenecks(tiny, tmp_path):
  summary = main.run_experiment(tiny("resnet50_cifar10.py"), str(tmp_path))
  assert _read(tmp_path / "stage_supernet", "config.json")["model"]["block"] == "bottleneck"
  assert summary["found_macs"] == summary["baseline_macs"]
  assert len(summary["found_dilations"]) == 5


@pytest.mark.slow  # an end-to-end run
def test_mobilenetv2_smoke_searches_and_its_overrides_build_the_found_network(tiny, tmp_path):
  summary = main.run_experiment(tiny("mobilenetv2_cifar10.py"), str(tmp_path / "search"))
  stage = _read(tmp_path / "search", "stage_scores.json")
  # 1/1/2/1/1 at 8 px, width 0.1: one other allocation within 1 % (in a 1/1/2/1/2 supernet).
  assert sorted(stage["allocations"]) == ["1-1-1-1-2", "1-1-2-1-1"]
  assert stage["allocations"][0] == "-".join(map(str, summary["found_allocation"]))
  assert abs(summary["macs_ratio"] - 1) <= 0.01
  blocks = (1, *summary["found_allocation"], 1)
  assert len(summary["found_dilations"]) == sum(blocks)  # groups 1 and 7 too
  assert len(_read(tmp_path / "search", "beam.json")["blocks"]) == sum(blocks)
  # summary.json's overrides on the retrain config it names build the found network ...
  arg = summary["retrain_config"].split(":")[1]
  c = config_cli.load_config_file(f"{CONFIGS / 'retrain_cifar10.py'}:smoke,{arg}")
  for flag in shlex.split(summary["retrain_overrides"]):
    key, value = flag.removeprefix("--config.").split("=", 1)
    set_path(c, key, ast.literal_eval(value))
  net = models.model_from_config(c.model, 10)
  assert net.blocks == blocks and net.dilations == tuple(summary["found_dilations"])
  assert count_macs(net, np.zeros((1, 8, 8, 3), np.float32), train=False) == summary["found_macs"]
  # ... in a valid `train` config (training it is the plain MobileNetV2 path, tested elsewhere).
  main.get_method(c.method).validate_config(c)


@pytest.mark.parametrize(
  "overrides, match",
  [
    ({"model.blocks": (1, 2, 3, 4, 3, 3, 1)}, "model.blocks"),
    ({"crnas.baseline": (1, 1, 2, 1)}, "crnas.baseline"),
    ({"crnas.max_blocks": (2, 2, 3, 2)}, "max_blocks"),
    ({"model.block": "basic"}, "block"),  # a ResNet field
    ({"model.name": "crnas_resnet"}, "model.name"),
  ],
)
def test_bad_mobilenetv2_config_is_refused(tiny, tmp_path, overrides, match):
  with pytest.raises(ConfigError, match=match):
    main.run_experiment(tiny("mobilenetv2_cifar10.py", **overrides), str(tmp_path / "run"))
  assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
  "overrides, match",
  [
    ({"crnas.backbone": "vgg16"}, "crnas.backbone"),
    ({"model.name": "resnet18"}, "model.name"),
    ({"model.stage_sizes": (2, 1, 1, 1)}, "baseline"),
    ({"model.dilations": (1, 1, 1, 1, 1)}, "model.dilations"),
    ({"crnas.max_blocks": (1, 1, 1, 1)}, "max_blocks"),
    ({"crnas.stage_sampling": "greedy"}, "stage_sampling"),
    ({"crnas.dilations": (1, 1)}, "dilations"),
    ({"crnas.beam_size": 0}, "beam_size"),
    ({"crnas.score_batches": 0}, "score_batches"),
    ({"population.size": 2}, "population.size"),
    ({"data.val_size": 0}, "val_size"),
    ({"model.dtype": "bfloat16"}, "float32"),
    ({"crnas.score_batches": 3}, "score_batches"),  # 2 val batches of 20
  ],
)
def test_bad_config_is_refused_before_anything_is_written(tiny, tmp_path, overrides, match):
  workdir = tmp_path / "run"
  with pytest.raises(ConfigError, match=match):
    main.run_experiment(tiny(**overrides), str(workdir))
  assert not workdir.exists()


def retrain_config(data_dir):
  c = config_cli.load_config_file(f"{CONFIGS / 'retrain_cifar10.py'}:smoke")
  c.model.update(stage_sizes=(1, 1, 1, 2), dilations=(3, 3, 1, 1, 2))
  c.data.update(dir=str(data_dir), use_tfds=False, val_size=20, sample_ratio=1.0)
  c.update(eval_batch_size=20, progress=False)
  return c


@pytest.mark.slow  # an end-to-end run
def test_retrain_config_builds_the_found_network(tiny_cifar_dir, tmp_path):
  summary = main.run_experiment(retrain_config(tiny_cifar_dir), str(tmp_path))
  assert summary["steps"] == 4 and summary["population_size"] == 2
  assert len(summary["test_accuracy_per_copy"]) == 2


def test_retrain_config_refuses_dilations_of_another_length(tiny_cifar_dir, tmp_path):
  bad = retrain_config(tiny_cifar_dir)
  bad.model.dilations = (1, 2)
  with pytest.raises(ConfigError, match="dilations"):
    main.run_experiment(bad, str(tmp_path / "bad"))
  assert not (tmp_path / "bad").exists()
