"""The registry's search-space networks: the Flax network of a `jaxml.spaces` space, as a model.

The spaces: NAS-Bench-201 (Dong & Yang, ICLR 2020), DARTS (Liu et al., ICLR 2019), EcoNAS's
NASNet-style cells (Zhou et al., CVPR 2020) and SPOS's ShuffleNetV2 choice blocks (Guo et al.,
ECCV 2020).

`arch=''` builds the space's ARRAY build (every architecture of the space in one module, called
with the architecture as the keyword argument `encoding`); `arch` set to one architecture in the
paper's notation (`space.from_string`) builds the FIXED build of that cell. See
`jaxml.models.registry` for the names and fields.

`jaxml.spaces` is imported inside `build_model`, not at module level: `jaxml.spaces.crnas`
imports `jaxml.models.resnet`, which runs `jaxml/models/__init__.py` (and so this module) first;
a module-level import here would make importing `jaxml.spaces` first a cycle.
"""

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxml.errors import ConfigError
from jaxml.models.fields import int_field

# The registry's names of this family (jaxml.models.registry): config fields and defaults.
MODEL_FIELDS: dict[str, dict[str, Any]] = {
  "nb201": {"channels": 16, "cells_per_stage": 5, "arch": ""},
  "darts_cells": {"channels": 36, "layers": 20, "stem_multiplier": 3, "arch": ""},
  "econas_cells": {
    "channels": 36,
    "cells_per_stage": 6,
    "num_nodes": 5,
    "stem_multiplier": 3,
    "arch": "",
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


def build_model(name: str, num_classes: int, dtype, f: Mapping[str, Any]) -> nn.Module:
  """The array build (arch '') or the fixed build of `f['arch']` of a search space's network."""
  from jaxml import spaces  # lazily: see the module docstring

  if dtype != jnp.dtype(jnp.float32):
    raise ConfigError(f"Model {name!r} supports dtype 'float32' only. Set config.model.dtype.")
  fields = {k: v for k, v in f.items() if k != "arch"}
  if name == "shufflenet_spos":  # the space validates its own (non-integer) fields
    fields["stage_blocks"] = tuple(fields["stage_blocks"])
    space = spaces.ShuffleNetSPOSSpace(num_classes=num_classes, **fields)
  else:
    ints = {k: int_field(name, k, v, 1) for k, v in fields.items()}
    build = {
      "nb201": spaces.NB201Space,
      "darts_cells": spaces.DARTSSpace,
      "econas_cells": spaces.EcoNASSpace,
    }[name]
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
