"""Registry fields of the backbones (ShuffleNet V2, MobileNetV2, FishNet, ResNet stem/SE/width):
defaults, and one ConfigError per impossible value (no tracing)."""

import pytest

from jaxml.errors import ConfigError
from jaxml.models import FishNet, MobileNetV2, ShuffleNetV2, default_model_config, get_model


def test_defaults_are_the_papers_nets_with_the_cifar_stem():
  assert dict(default_model_config("shufflenetv2")) == {
    "name": "shufflenetv2",
    "dtype": "float32",
    "scale": 1.0,
    "units": (4, 8, 4),
    "se": False,
    "stem": "cifar",
  }
  assert get_model("shufflenetv2", 10) == ShuffleNetV2(10)
  assert get_model("mobilenetv2", 10) == MobileNetV2(10)
  assert get_model("fishnet150", 10, stem="imagenet") == FishNet(10, depth=150, stem="imagenet")
  r50 = get_model("resnet50", 10, se=True, width=16)
  assert r50.se and r50.stage_widths == (16, 32, 64, 128) and r50.block == "bottleneck"


@pytest.mark.parametrize(
  "name,fields,match",
  [
    ("resnet18", {"stem": "tiny"}, "stem must be one of cifar, imagenet"),
    ("resnet50", {"se": 1}, "se must be True or False"),
    ("cifar_resnet", {"stem": None}, "stem"),
    ("shufflenetv2", {"scale": 0.75}, "scale must be one of 0.5, 1.0, 1.5, 2.0"),
    ("shufflenetv2", {"units": (4, 8)}, "units must be 3 integers"),
    ("mobilenetv2", {"width_mult": 0}, "width_mult must be a number > 0"),
    ("mobilenetv2", {"blocks": (1, 1, 1, 1, 1, 1, 0)}, "blocks must be 7 integers >= 1"),
    ("fishnet99", {"width": 6}, "multiple of 4"),
    ("fishnet150", {"depth": 99}, "does not accept field"),
  ],
)
def test_bad_fields_are_config_errors(name, fields, match):
  with pytest.raises(ConfigError, match=match):
    get_model(name, 10, **fields)
