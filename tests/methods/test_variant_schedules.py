"""A method's `:baseline` (and `:frozen`) variant runs on the method's own schedule, smoke size
included: the comparison the variants exist for is on equal training."""

import pytest

from jaxml import config_cli

SCHEDULE = ("batch_size", "num_steps", "num_epochs", "eval_batch_size", "seed")
DATA = ("val_size", "sample_ratio", "resolution", "label_noise")


@pytest.mark.parametrize(
  "experiment",
  [
    "experiments/ohl/cifar10_resnet18.py",
    "experiments/ohl/cifar10_wrn28_10.py",
    "experiments/amlfs/cifar10_noise20.py",
  ],
)
@pytest.mark.parametrize("size", ["smoke,", ""])
def test_baseline_and_frozen_share_the_method_schedule(experiment, size):
  method = config_cli.load_config_file(f"{experiment}:{size.rstrip(',') or ''}".rstrip(":"))
  for variant in ("baseline", "frozen"):
    other = config_cli.load_config_file(f"{experiment}:{size}{variant}")
    for key in SCHEDULE:
      assert other[key] == method[key], (variant, key)
    for key in DATA:
      assert other.data.get(key) == method.data.get(key), (variant, key)
    assert other.optim.to_dict() == method.optim.to_dict(), variant
    assert other.model.to_dict() == method.model.to_dict(), variant
