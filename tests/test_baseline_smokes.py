"""Every smoke of the backbone and large-batch baselines (experiments/baselines) end to end.

Each `:smoke` config runs through `jaxml.main.run_experiment` on the tiny CIFAR copy of
tests/conftest.py, its model family and optimizer switches untouched, with the run cut to 3 steps
of 16 images at 8x8 (every family's CIFAR stem reaches 1x1 at its last stage), with XLA:CPU's
fast-compile options (`population.fast_compile`), and one 100-image eval batch for the val
hold-out and the test split alike. The models are those of the smoke configs: ShuffleNet V2 0.5x
with one unit per stage, MobileNetV2 0.25 with one block per stage, ResNet-50 at base width 4,
ResNet-18 at width 8, and FishNet-99 with all its stages and blocks at width 4 (its smallest
faithful size: the depth is the name).

Cost: compiling (init, train step, eval) dominates; 385 s wall for the five on the shared 2-core
CPU at load ~12 (186 CPU-s), over the 60 s target: ResNet-50 (16 blocks) and FishNet-99 (39
blocks) have no depth knob to cut, and FishNet-99 alone is ~40 % of it.
"""

import math

import pytest
from train_fixtures import REPO_ROOT, set_path

from jaxml import config_cli
from jaxml import main as jaxml_main

pytestmark = pytest.mark.slow  # every test is an end-to-end run: the end-to-end tier (-m slow)

SMOKES = {
  "cifar10_shufflenetv2": "shufflenetv2",
  "cifar10_mobilenetv2": "mobilenetv2",
  "cifar10_fishnet99": "fishnet99",
  "cifar10_resnet50": "resnet50",
  "cifar10_resnet18_largebatch": "resnet18",
}


@pytest.mark.parametrize("name", SMOKES)
def test_smoke_runs_end_to_end(name, tiny_cifar_dir, tmp_path):
  config = config_cli.load_config_file(f"{REPO_ROOT}/experiments/baselines/{name}.py:smoke")
  overrides = {
    "data.dir": str(tiny_cifar_dir),
    "data.cache_dir": str(tmp_path / "cache"),
    "data.use_tfds": False,
    "data.val_size": 100,  # = the tiny test split: val and test share one eval compile
    "data.sample_ratio": 1.0,
    "data.resolution": 8,
    "batch_size": 16,
    "eval_batch_size": 100,
    "num_steps": 3,
    "log_every_steps": 1,
    "checkpoint_every_steps": 3,
    "progress": False,
    "population.fast_compile": True,  # XLA:CPU compile time dominates a 3-step run
  }
  for key, value in overrides.items():
    set_path(config, key, value)
  summary = jaxml_main.run_experiment(config, str(tmp_path / "run"))
  assert summary["steps"] == 3 and config.model.name == SMOKES[name]
  assert math.isfinite(summary["val_accuracy"]) and math.isfinite(summary["test_accuracy"])
  if name.endswith("largebatch"):
    assert config.optim.optimizer == "lars" and config.optim.linear_scaling
    assert config.optim.momentum_correction and config.optim.warmup_epochs > 0
