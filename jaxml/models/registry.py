"""The model registry: model names -> family builders, and building a model from `config.model`.

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

Each family declares its names, fields and defaults (`MODEL_FIELDS`) and validates its own
fields (`build_model`) in its module (resnet.py, wrn.py, shufflenet.py, mobilenet.py, fishnet.py,
space_networks.py); this module checks what every model shares (name, dtype, num_classes, no
unknown field) and dispatches.
"""

import math
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from jaxml.errors import ConfigError
from jaxml.models import fishnet, mobilenet, resnet, shufflenet, space_networks, wrn
from jaxml.models.fields import int_field

# Name -> family module (its MODEL_FIELDS[name] and build_model); the order is MODEL_NAMES',
# which error messages list.
_FAMILY = {
  "resnet18": resnet,
  "resnet34": resnet,
  "resnet50": resnet,
  "resnet20": resnet,
  "resnet56": resnet,
  "cifar_resnet": resnet,
  "wrn": wrn,
  "tiny_cnn": resnet,
  "nb201": space_networks,
  "darts_cells": space_networks,
  "econas_cells": space_networks,
  "shufflenetv2": shufflenet,
  "mobilenetv2": mobilenet,
  "fishnet99": fishnet,
  "fishnet150": fishnet,
  "crnas_resnet": resnet,
  "shufflenet_spos": space_networks,
}
# Model-specific fields and defaults; every model also takes `dtype`.
_FIELDS: dict[str, dict[str, Any]] = {n: f.MODEL_FIELDS[n] for n, f in _FAMILY.items()}
MODEL_NAMES = tuple(_FIELDS)
SPACE_MODELS = tuple(space_networks.MODEL_FIELDS)  # networks of jaxml.spaces
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
  num_classes = int_field(name, "num_classes", num_classes, 1)
  unknown = sorted(set(kwargs) - set(_FIELDS[name]))
  if unknown:
    accepted = ", ".join(_FIELDS[name]) or "none besides dtype"
    raise ConfigError(
      f"Model {name!r} does not accept field(s) {', '.join(unknown)}; accepted: {accepted}."
    )
  return _FAMILY[name].build_model(name, num_classes, dt, {**_FIELDS[name], **kwargs})


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
