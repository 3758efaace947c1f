"""jaxml/configs.py: the variant parser, the steps/epochs helper, and the interval fields."""

import pathlib

import ml_collections
import pytest

from jaxml import config_cli, configs
from jaxml.errors import ConfigError

REPO = pathlib.Path(__file__).resolve().parents[1]
VALID = ("smoke", "baseline", "frozen")
EXCLUSIVE = (("baseline", "frozen"),)
# Every experiment file whose variants come from configs.parse_variants, and its `name`.
EXPERIMENTS = {
  "experiments/baselines/cifar10_resnet18.py": "baselines/cifar10_resnet18",
  "experiments/baselines/cifar10_resnet20.py": "baselines/cifar10_resnet20",
  "experiments/baselines/cifar10_wrn28_10.py": "baselines/cifar10_wrn28_10",
  "experiments/tabular/nb201_cifar10.py": "tabular/nb201_cifar10",
  "experiments/amlfs/cifar10_noise0.py": "amlfs/cifar10_noise0",
  "experiments/amlfs/cifar10_noise10.py": "amlfs/cifar10_noise10",
  "experiments/amlfs/cifar10_noise20.py": "amlfs/cifar10_noise20",
}


def parse(arg):
  return configs.parse_variants(arg, VALID, name="ohl/cifar10_resnet18", exclusive=EXCLUSIVE)


@pytest.mark.parametrize(
  "arg, expected",
  [
    (None, set()),
    ("", set()),
    ("smoke", {"smoke"}),
    ("smoke,frozen", {"smoke", "frozen"}),
    ("frozen,smoke", {"smoke", "frozen"}),
    (" smoke , baseline ,", {"smoke", "baseline"}),  # blanks and a trailing comma are harmless
    ("smoke,smoke", {"smoke"}),
  ],
)
def test_parse_variants(arg, expected):
  assert parse(arg) == expected


def test_unknown_variant_is_one_line_naming_the_file_and_the_valid_ones():
  with pytest.raises(ConfigError) as err:
    parse("smoke,nosuch,big")
  msg = str(err.value)
  assert "\n" not in msg
  assert "unknown config arg 'big', 'nosuch' for ohl/cifar10_resnet18" in msg
  assert "valid: smoke, baseline, frozen" in msg
  with pytest.raises(ConfigError, match="unknown config arg 'nosuch' for x"):
    configs.parse_variants("nosuch", ("smoke",), name="x")


def test_exclusive_variants():
  assert parse("baseline") == {"baseline"} and parse("frozen") == {"frozen"}
  with pytest.raises(ConfigError, match="'baseline' and 'frozen' exclude each other"):
    parse("smoke,frozen,baseline")
  # An exclusive pair that names no valid variant is the experiment file's own bug.
  with pytest.raises(ValueError, match="frozne"):
    configs.parse_variants(None, VALID, name="x", exclusive=(("baseline", "frozne"),))


@pytest.mark.parametrize("path, name", sorted(EXPERIMENTS.items()))
def test_experiment_files_use_parse_variants(path, name):
  full = config_cli.load_config_file(str(REPO / path))
  assert config_cli.load_config_file(f"{REPO / path}:") == full  # '' is the full run
  assert config_cli.load_config_file(f"{REPO / path}:smoke") != full
  with pytest.raises(ConfigError, match=f"unknown config arg 'smok' for {name} .*valid: smoke"):
    config_cli.load_config_file(f"{REPO / path}:smok")


def cfg(**fields) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(fields)


@pytest.mark.parametrize(
  "fields, spe, expected",
  [
    ({"num_steps": 40, "num_epochs": 200.0}, 351, 40),  # steps > 0 win over epochs
    ({"num_steps": -1, "num_epochs": 200.0}, 351, 70200),
    ({"num_steps": 0, "num_epochs": 2.0}, 351, 702),
    ({"num_epochs": 2.0}, 351, 702),  # a missing steps key counts as unset
    ({"num_steps": 7}, 351, 7),  # and so does a missing epochs key
    ({"num_steps": -1, "num_epochs": 0.5}, 7, 4),  # round(3.5) = 4
    ({"num_steps": -1, "num_epochs": 0.5}, 5, 2),  # round(2.5) = 2: Python's round, as before
    ({"num_steps": -1, "num_epochs": 0.29}, 100, 29),  # 28.999... rounds, not truncates
    ({"num_steps": -1, "num_epochs": 0.001}, 351, 1),  # at least one step
  ],
)
def test_steps_precedence_and_rounding(fields, spe, expected):
  n = configs.steps("num", cfg(**fields), spe)
  assert n == expected and isinstance(n, int)


def test_steps_missing_or_unset_is_a_config_error_naming_both_keys():
  for fields in ({}, {"trunk_steps": 0, "trunk_epochs": 0.0}, {"trunk_steps": -1}):
    with pytest.raises(ConfigError, match="set trunk_steps > 0 or trunk_epochs > 0"):
      configs.steps("trunk", cfg(**fields), 100)
  assert configs.steps("trunk", cfg(trunk_steps=0, trunk_epochs=0.0), 100, default=5) == 5
  with pytest.raises(ConfigError, match="trunk_epochs=2.0 needs >= 1 step per epoch"):
    configs.steps("trunk", cfg(trunk_epochs=2.0), 0)


def test_steps_reads_the_training_config_fields():
  c = configs.training_config("train", "tiny_cnn")
  spe = 351
  assert configs.steps("num", c, spe) == 200 * spe
  # The interval defaults keep their old meaning: once per epoch.
  assert configs.steps("eval_every", c, spe) == spe
  assert configs.steps("checkpoint_every", c, spe) == spe
  c.update(eval_every_steps=100, checkpoint_every_epochs=2.5)
  assert configs.steps("eval_every", c, spe) == 100
  assert configs.steps("checkpoint_every", c, spe) == round(2.5 * spe)
  ohl = ml_collections.ConfigDict({"trunk_epochs": 2.0, "trunk_steps": 0})
  assert configs.steps("trunk", ohl, spe) == 2 * spe


@pytest.mark.parametrize(
  "overrides, match",
  [
    ({"eval_every_steps": -5}, "eval_every_steps must be >= 0"),
    ({"eval_every_epochs": -1.0}, "eval_every_epochs must be >= 0"),
    ({"checkpoint_every_epochs": -0.5}, "checkpoint_every_epochs must be >= 0"),
    ({"eval_every_epochs": 0.0}, "set eval_every_steps > 0 or eval_every_epochs > 0"),
    (
      {"checkpoint_every_steps": 0, "checkpoint_every_epochs": 0.0},
      "set checkpoint_every_steps > 0 or checkpoint_every_epochs > 0",
    ),
  ],
)
def test_validate_interval_fields(overrides, match):
  c = configs.training_config("train", "tiny_cnn")
  configs.validate_training_config(c)
  c.update(overrides)
  with pytest.raises(ConfigError, match=match):
    configs.validate_training_config(c)
  c.update(eval_every_steps=10, checkpoint_every_steps=10)  # steps > 0 make epochs = 0 fine
  c.update(eval_every_epochs=0.0, checkpoint_every_epochs=0.0)
  configs.validate_training_config(c)


@pytest.mark.parametrize(
  "path", sorted(str(p.relative_to(REPO)) for p in (REPO / "experiments").rglob("*.py"))
)
def test_every_experiment_file_validates(path):
  """Each experiment file's full config passes its own method's checks (no data is read)."""
  from jaxml import main

  config = config_cli.load_config_file(str(REPO / path))
  main.get_method(config.method).validate_config(config)


@pytest.mark.parametrize(
  "path", sorted(str(p.relative_to(REPO)) for p in (REPO / "experiments").rglob("*.py"))
)
def test_every_experiment_file_declares_the_variants_it_accepts(path):
  """`VARIANTS` (what `--help` lists) is exactly what the file's `:arg` accepts."""
  variants = config_cli.load_module(str(REPO / path)).VARIANTS
  for v in variants:
    config_cli.load_config_file(f"{REPO / path}:{v}")
  with pytest.raises(ConfigError, match=f"valid: {', '.join(variants)}, comma-separated"):
    config_cli.load_config_file(f"{REPO / path}:nosuch")
