"""jaxml.models: baseline backbones and the registry that builds them from a config.

Names (model-specific config fields and their defaults in brackets):

* 'resnet18', 'resnet34', 'resnet50' [width=64, stem='cifar', se=False]: kuangliu/pytorch-cifar
  ResNets (projection shortcuts; bottleneck blocks in ResNet-50) with stage widths w/2w/4w/8w;
  stem='imagenet' is He et al.'s 7x7/2 conv + 3x3/2 max-pool (ResNet-50 then is torchvision's,
  25.6 M parameters); se=True adds squeeze-and-excitation to every block (Hu et al. 2018).
* 'resnet20', 'resnet56': He et al. 2016 §4.2 CIFAR ResNets (16 channels, option-A shortcuts).
* 'cifar_resnet' [depth=20, width=16, stem='cifar']: ResNet-depth, depth = 6n+2, base width
  `width` channels; e.g. depth=8, width=8 is a cheap proxy.
* 'wrn' [depth=28, width=10, dropout=0.0]: WRN-depth-width (Zagoruyko & Komodakis 2016).
* 'tiny_cnn' [width=8]: 3 conv-BN-ReLU layers, pool, dense; a proxy for tests and benchmarks.
* 'shufflenetv2' [scale=1.0, units=(4, 8, 4), se=False, stem='cifar']: ShuffleNet V2 (Ma et al.
  2018 Table 5) at scale 0.5 / 1.0 / 1.5 / 2.0; `units` per stage; se=True adds SE to every unit.
* 'mobilenetv2' [width_mult=1.0, blocks=(1, 2, 3, 4, 3, 3, 1), stem='cifar', dilations=()]:
  MobileNetV2 (Sandler et al. 2018 Table 2) with width multiplier `width_mult`; `blocks` per
  stage; `dilations` of every block's depthwise conv (() = all 1; CRNAS's found networks).
* 'fishnet99', 'fishnet150' [width=64, stem='cifar']: FishNet (Sun et al. 2018), every network
  plane scaled by width / 64 (a multiple of 4).

* 'crnas_resnet' [block='basic', width=64, stage_sizes=(2, 2, 2, 2), dilations=(), stem='cifar']:
  a projection-shortcut ResNet (widths w/2w/4w/8w) with any blocks per stage and, per block, the
  dilation of its searchable 3x3 conv (() = all 1): the networks CRNAS finds
  (`jaxml.spaces.crnas`; stage_sizes (2, 2, 2, 2) with basic blocks is 'resnet18').

Every family takes `stem`: 'cifar' keeps 32x32 inputs large (stride-1 stem), 'imagenet' is the
paper's stem for 224 px inputs (see each family's module docstring).

Search-space networks (`jaxml.spaces`; float32 only):

* 'nb201' [channels=16, cells_per_stage=5, arch='']: the NAS-Bench-201 `TinyNetwork`.
* 'darts_cells' [channels=36, layers=20, stem_multiplier=3, arch='']: the DARTS CIFAR network.
* 'econas_cells' [channels=36, cells_per_stage=6, num_nodes=5, stem_multiplier=3, arch='']: the
  EcoNAS (NASNet-style) network.
* 'shufflenet_spos' [table='spos', width=1.0, stage_blocks=(), stem='cifar', affine=True,
  arch='']: the SPOS / DetNAS ShuffleNetV2 choice-block network (arch: '(2,1,0,...)').

`arch=''` builds the space's ARRAY build: one module for every architecture of the space, called
with the architecture as the keyword argument `encoding` (int32[L]); the engine passes it per
copy from `hparams['model']['encoding']`, so K copies of K different cells are one population.
`arch` set to one architecture in the paper's notation (`space.from_string`: the NB201 arch
string, e.g. '|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|', or a
DARTS `Genotype(...)` repr) builds the FIXED build of that cell (only its ops, no `encoding`
argument): train one cell with `--config.model.arch='|nor_conv_3x3~0|+|...|'` in an experiment
whose `config.model` is `default_model_config('nb201')` (a config without the `arch` field
cannot take that override).

Every module is called as `module.apply(variables, x, train=..., mutable=..., rngs=...)` with
float NHWC `x`, keeps BN statistics in 'batch_stats', and returns float32 logits.
"""

import math
import numbers
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from jaxml.errors import ConfigError
from jaxml.models.fishnet import FishNet
from jaxml.models.mobilenet import MobileNetV2
from jaxml.models.resnet import (
  STEMS,
  ResNet,
  ResNet18,
  ResNet34,
  ResNet50,
  TinyCNN,
  cifar_resnet,
)
from jaxml.models.shufflenet import STAGE_CHANNELS, ShuffleNetV2
from jaxml.models.wrn import WideResNet
from jaxml.spaces import DARTSSpace, EcoNASSpace, NB201Space, ShuffleNetSPOSSpace

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

# Model-specific fields and defaults; every model also takes `dtype`.
_FIELDS: dict[str, dict[str, Any]] = {
  "resnet18": {"width": 64, "stem": "cifar", "se": False},
  "resnet34": {"width": 64, "stem": "cifar", "se": False},
  "resnet50": {"width": 64, "stem": "cifar", "se": False},
  "resnet20": {},
  "resnet56": {},
  "cifar_resnet": {"depth": 20, "width": 16, "stem": "cifar"},
  "wrn": {"depth": 28, "width": 10, "dropout": 0.0},
  "tiny_cnn": {"width": 8},
  "nb201": {"channels": 16, "cells_per_stage": 5, "arch": ""},
  "darts_cells": {"channels": 36, "layers": 20, "stem_multiplier": 3, "arch": ""},
  "econas_cells": {
    "channels": 36,
    "cells_per_stage": 6,
    "num_nodes": 5,
    "stem_multiplier": 3,
    "arch": "",
  },
  "shufflenetv2": {"scale": 1.0, "units": (4, 8, 4), "se": False, "stem": "cifar"},
  "mobilenetv2": {
    "width_mult": 1.0,
    "blocks": (1, 2, 3, 4, 3, 3, 1),
    "stem": "cifar",
    "dilations": (),
  },
  "fishnet99": {"width": 64, "stem": "cifar"},
  "fishnet150": {"width": 64, "stem": "cifar"},
  "crnas_resnet": {
    "block": "basic",
    "width": 64,
    "stage_sizes": (2, 2, 2, 2),
    "dilations": (),
    "stem": "cifar",
  },
  "shufflenet_spos": {
    "table": "spos",
    "width": 1.0,
    "stage_blocks": (),
    "stem": "cifar",
    "affine": True,
    "arch": "",
  },
}
MODEL_NAMES = tuple(_FIELDS)
SPACE_MODELS = (
  "nb201",
  "darts_cells",
  "econas_cells",
  "shufflenet_spos",
)  # networks of jaxml.spaces
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def _check_name(name: Any) -> str:
  if not isinstance(name, str) or name not in _FIELDS:
    raise ConfigError(
      f"Unknown model name {name!r}; valid names: {', '.join(MODEL_NAMES)}. "
      "Set config.model.name to one of them."
    )
  return name


def _check_dtype(dtype: Any) -> jnp.dtype:
  if isinstance(dtype, str):
    if dtype not in DTYPES:
      raise ConfigError(
        f"Unknown model dtype {dtype!r}; valid: {', '.join(DTYPES)}. Set config.model.dtype."
      )
    return jnp.dtype(DTYPES[dtype])
  try:
    dt = jnp.dtype(dtype)
  except (TypeError, ValueError):
    dt = None
  if dt not in (jnp.dtype(jnp.float32), jnp.dtype(jnp.bfloat16)):
    raise ConfigError(f"Unsupported model dtype {dtype!r}; valid: {', '.join(DTYPES)}.")
  return dt


def _int_field(name: str, field: str, value: Any, minimum: int) -> int:
  if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
    raise ConfigError(
      f"Model {name!r}: {field} must be an integer >= {minimum}, got {value!r}. "
      f"Set config.model.{field}."
    )
  return int(value)


def _stem_field(name: str, value: Any) -> str:
  if value not in STEMS:
    raise ConfigError(
      f"Model {name!r}: stem must be one of {', '.join(STEMS)}, got {value!r}. "
      "Set config.model.stem."
    )
  return value


def _bool_field(name: str, field: str, value: Any) -> bool:
  if not isinstance(value, bool):
    raise ConfigError(
      f"Model {name!r}: {field} must be True or False, got {value!r}. Set config.model.{field}."
    )
  return value


def _counts_field(name: str, field: str, value: Any, length: int) -> tuple[int, ...]:
  """A tuple of `length` integers >= 1 (blocks per stage)."""
  ok = isinstance(value, tuple | list) and len(value) == length
  ok = ok and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value)
  if not ok or min(value) < 1:
    raise ConfigError(
      f"Model {name!r}: {field} must be {length} integers >= 1, got {value!r}. "
      f"Set config.model.{field}."
    )
  return tuple(int(v) for v in value)


def _depth_field(name: str, value: Any, offset: int) -> int:
  """Depth of the form 6n + offset with n >= 1 (offset 2: CIFAR ResNet, offset 4: WRN)."""
  depth = _int_field(name, "depth", value, 1)
  if depth < 6 + offset or (depth - offset) % 6:
    valid = ", ".join(str(6 * n + offset) for n in (1, 2, 3, 4, 5, 6, 9, 18))
    raise ConfigError(
      f"Model {name!r}: depth must be 6n+{offset} with n >= 1 (e.g. {valid}, ...), got {depth}. "
      "Set config.model.depth to such a value."
    )
  return depth


def get_model(name: str, num_classes: int, dtype=jnp.float32, **kwargs) -> nn.Module:
  """Builds the backbone `name` (see the module docstring) with `num_classes` logits.

  Args:
    name: one of MODEL_NAMES.
    num_classes: number of logits, >= 1.
    dtype: computation dtype, jnp.float32 / jnp.bfloat16 or 'float32' / 'bfloat16'.
    **kwargs: the model's fields (depth, width, dropout); omitted ones take their defaults.

  Raises:
    ConfigError: unknown name, dtype or field, or an impossible value (e.g. a bad depth).
  """
  name = _check_name(name)
  dt = _check_dtype(dtype)
  num_classes = _int_field(name, "num_classes", num_classes, 1)
  unknown = sorted(set(kwargs) - set(_FIELDS[name]))
  if unknown:
    accepted = ", ".join(_FIELDS[name]) or "none besides dtype"
    raise ConfigError(
      f"Model {name!r} does not accept field(s) {', '.join(unknown)}; accepted: {accepted}."
    )
  f = {**_FIELDS[name], **kwargs}
  if name in SPACE_MODELS:
    return _space_network(name, num_classes, dt, f)
  if name in ("resnet18", "resnet34", "resnet50"):
    w = _int_field(name, "width", f["width"], 1)
    build = {"resnet18": ResNet18, "resnet34": ResNet34, "resnet50": ResNet50}[name]
    return build(
      num_classes=num_classes,
      dtype=dt,
      stage_widths=(w, 2 * w, 4 * w, 8 * w),
      stem=_stem_field(name, f["stem"]),
      se=_bool_field(name, "se", f["se"]),
    )
  if name == "crnas_resnet":
    return _crnas_resnet(num_classes, dt, f)
  if name in ("resnet20", "resnet56"):
    return cifar_resnet(int(name[len("resnet") :]), num_classes, width=16, dtype=dt)
  if name == "cifar_resnet":
    depth = _depth_field(name, f["depth"], offset=2)
    width = _int_field(name, "width", f["width"], 1)
    stem = _stem_field(name, f["stem"])
    return cifar_resnet(depth, num_classes, width=width, dtype=dt, stem=stem)
  if name == "shufflenetv2":
    if f["scale"] not in STAGE_CHANNELS or isinstance(f["scale"], bool):
      raise ConfigError(
        f"Model 'shufflenetv2': scale must be one of {', '.join(map(str, STAGE_CHANNELS))} "
        f"(Ma et al. Table 5), got {f['scale']!r}. Set config.model.scale."
      )
    return ShuffleNetV2(
      num_classes,
      scale=float(f["scale"]),
      units=_counts_field(name, "units", f["units"], 3),
      se=_bool_field(name, "se", f["se"]),
      stem=_stem_field(name, f["stem"]),
      dtype=dt,
    )
  if name == "mobilenetv2":
    mult = f["width_mult"]
    if isinstance(mult, bool) or not isinstance(mult, numbers.Real) or not mult > 0:
      raise ConfigError(
        f"Model 'mobilenetv2': width_mult must be a number > 0, got {mult!r}. "
        "Set config.model.width_mult."
      )
    blocks = _counts_field(name, "blocks", f["blocks"], 7)
    dils = f["dilations"]
    return MobileNetV2(
      num_classes,
      width_mult=float(mult),
      blocks=blocks,
      stem=_stem_field(name, f["stem"]),
      dtype=dt,
      dilations=_counts_field(name, "dilations", dils, sum(blocks)) if len(dils or ()) else None,
    )
  if name in ("fishnet99", "fishnet150"):
    width = _int_field(name, "width", f["width"], 4)
    if width % 4:
      raise ConfigError(
        f"Model {name!r}: width must be a multiple of 4 (64 is the paper's net), got {width}. "
        "Set config.model.width."
      )
    depth = int(name[len("fishnet") :])
    return FishNet(
      num_classes, depth=depth, width=width, stem=_stem_field(name, f["stem"]), dtype=dt
    )
  if name == "wrn":
    depth = _depth_field(name, f["depth"], offset=4)
    width = _int_field(name, "width", f["width"], 1)
    dropout = f["dropout"]
    if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0 <= dropout < 1:
      raise ConfigError(
        f"Model 'wrn': dropout must be a number in [0, 1), got {dropout!r}. "
        "Set config.model.dropout."
      )
    return WideResNet(depth, width, num_classes, dropout=float(dropout), dtype=dt)
  # name == "tiny_cnn" (the only name left in _FIELDS).
  return TinyCNN(num_classes, width=_int_field(name, "width", f["width"], 1), dtype=dt)


def _crnas_resnet(num_classes: int, dtype, f: dict) -> ResNet:
  """'crnas_resnet': a ResNet with `stage_sizes` blocks and per-block `dilations`."""
  name = "crnas_resnet"
  if f["block"] not in ("basic", "bottleneck"):
    raise ConfigError(
      f"Model {name!r}: block must be 'basic' or 'bottleneck', got {f['block']!r}. "
      "Set config.model.block."
    )
  sizes = _counts_field(name, "stage_sizes", f["stage_sizes"], 4)
  dilations = f["dilations"]
  if len(dilations or ()):
    dilations = _counts_field(name, "dilations", dilations, sum(sizes))
  width = _int_field(name, "width", f["width"], 1)
  return ResNet(
    stage_sizes=sizes,
    stage_widths=(width, 2 * width, 4 * width, 8 * width),
    num_classes=num_classes,
    block=f["block"],
    dtype=dtype,
    stem=_stem_field(name, f["stem"]),
    dilations=tuple(dilations) if len(dilations or ()) else None,
  )


def _space_network(name: str, num_classes: int, dtype, f: dict) -> nn.Module:
  """The array build (arch '') or the fixed build of `f['arch']` of a search space's network."""
  if dtype != jnp.dtype(jnp.float32):
    raise ConfigError(f"Model {name!r} supports dtype 'float32' only. Set config.model.dtype.")
  fields = {k: v for k, v in f.items() if k != "arch"}
  if name == "shufflenet_spos":  # the space validates its own (non-integer) fields
    fields["stage_blocks"] = tuple(fields["stage_blocks"])
    space = ShuffleNetSPOSSpace(num_classes=num_classes, **fields)
  else:
    ints = {k: _int_field(name, k, v, 1) for k, v in fields.items()}
    build = {"nb201": NB201Space, "darts_cells": DARTSSpace, "econas_cells": EcoNASSpace}[name]
    space = build(num_classes=num_classes, **ints)
  arch = f["arch"]
  if not isinstance(arch, str):
    raise ConfigError(
      f"Model {name!r}: arch must be a string in the {space.name} notation ('' for the array "
      f"build), got {arch!r}. Set config.model.arch."
    )
  if not arch:
    return space.network()
  try:
    encoding = space.from_string(arch)
  except ConfigError as e:
    raise ConfigError(f"Model {name!r}: bad config.model.arch: {e}") from e
  return space.network(encoding)


def default_model_config(name: str) -> ml_collections.ConfigDict:
  """The config of model `name` with every field it accepts, at its default value."""
  name = _check_name(name)
  return ml_collections.ConfigDict({"name": name, "dtype": "float32", **_FIELDS[name]})


def model_from_config(model_cfg: ml_collections.ConfigDict | Mapping, num_classes: int):
  """Builds the model described by `model_cfg` (fields: name, dtype, model-specific ones).

  Missing model-specific fields take their defaults; a missing dtype means 'float32'.

  Raises:
    ConfigError: no name, an unknown name/dtype/field, or an impossible value.
  """
  if isinstance(model_cfg, ml_collections.ConfigDict):
    fields = model_cfg.to_dict()
  elif isinstance(model_cfg, Mapping):
    fields = dict(model_cfg)
  else:
    raise ConfigError(f"config.model must be a ConfigDict, got {type(model_cfg).__name__}.")
  if "name" not in fields:
    raise ConfigError(f"config.model has no 'name'; valid names: {', '.join(MODEL_NAMES)}.")
  name = fields.pop("name")
  dtype = fields.pop("dtype", "float32")
  if not isinstance(dtype, str):
    raise ConfigError(f"config.model.dtype must be one of {', '.join(DTYPES)}, got {dtype!r}.")
  return get_model(name, num_classes, dtype=dtype, **fields)


def count_params(params) -> int:
  """Number of scalars in a pytree of arrays (or of jax.ShapeDtypeStructs from eval_shape).

  Pass `variables['params']`; BN running statistics live in 'batch_stats' and are not counted.
  """
  return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(params))
