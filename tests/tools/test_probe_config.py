"""tools/probe_config.py: no bad value crashes any method's validation with a traceback."""

import importlib.util
import math
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("probe_config", ROOT / "tools/probe_config.py")
probe_config = importlib.util.module_from_spec(spec)
spec.loader.exec_module(probe_config)

# One experiment file per method (every method in the registry: checked below); validation
# needs no data (tables and data are read only when a run starts).
EXPERIMENTS = [
  "experiments/baselines/cifar10_resnet20.py:smoke",
  "experiments/ohl/cifar10_resnet18.py:smoke",
  "experiments/amlfs/cifar10_noise0.py:smoke",
  "experiments/tabular/nb201_cifar10.py:smoke",
  "experiments/darts/nb201_cifar10.py:smoke",
  "experiments/econas/search_nb201.py:smoke",
  "experiments/econas/proxy_study_nb201.py:smoke",
  "experiments/spos/nb201_cifar10.py:smoke",
  "experiments/pcnas/nb201_cifar10.py:smoke",
  "experiments/crnas/resnet18_cifar10.py:smoke",
]


def test_every_method_is_probed():
  from jaxml import config_cli
  from jaxml.methods import METHODS

  probed = {config_cli.load_config_file(str(ROOT / p)).method for p in EXPERIMENTS}
  assert probed == set(METHODS)


def test_a_negative_seed_is_refused_by_every_method():
  from jaxml import config_cli
  from jaxml.errors import ConfigError
  from jaxml.methods import get_method

  for path in EXPERIMENTS:
    config = config_cli.load_config_file(str(ROOT / path))
    config.seed = -1
    with pytest.raises(ConfigError, match="seed must be an int >= 0"):
      get_method(config.method).validate_config(config)


@pytest.mark.parametrize("path", EXPERIMENTS)
def test_no_bad_value_crashes_validation(path):
  found = probe_config.probe(str(ROOT / path))
  assert not [f for f in found if f[2].startswith("CRASH")], found
  # Non-finite numbers never pass, whatever the field.
  assert not [f for f in found if isinstance(f[1], float) and not math.isfinite(f[1])], found


def test_a_crash_is_reported_with_exit_code_1(monkeypatch, capsys):
  def crashing(config):
    raise KeyError("boom")

  monkeypatch.setattr(
    probe_config, "get_method", lambda name: type("M", (), {"validate_config": crashing})
  )
  assert probe_config.main([str(ROOT / EXPERIMENTS[0])]) == 1
  assert "CRASH KeyError: 'boom'" in capsys.readouterr().out
