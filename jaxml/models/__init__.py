"""jaxml.models: baseline backbones and the registry that builds them from `config.model`.

The model names, their config fields and defaults are listed in `jaxml.models.registry`; shared
layers (conv, BN, SE, dilated conv) are in `jaxml.models.layers`. The search-space networks of
`jaxml.spaces` are built through the registry too, but this package does not import
`jaxml.spaces` at import time (`jaxml.spaces.crnas` imports `jaxml.models.resnet`), so either
package may be imported first.
"""

from jaxml.models.fishnet import FishNet
from jaxml.models.mobilenet import MobileNetV2
from jaxml.models.registry import (
  DTYPES,
  MODEL_NAMES,
  SPACE_MODELS,
  count_params,
  default_model_config,
  get_model,
  model_from_config,
)
from jaxml.models.resnet import ResNet, TinyCNN
from jaxml.models.shufflenet import ShuffleNetV2
from jaxml.models.wrn import WideResNet

__all__ = [
  "DTYPES",
  "MODEL_NAMES",
  "SPACE_MODELS",
  "FishNet",
  "MobileNetV2",
  "ResNet",
  "ShuffleNetV2",
  "TinyCNN",
  "WideResNet",
  "count_params",
  "default_model_config",
  "get_model",
  "model_from_config",
]
