"""The model registry: names, config fields, and ConfigErrors for bad values (compute only in the
search-space forward pass, at 8x8 with 4 channels)."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxml.errors import ConfigError
from jaxml.models import (
  MODEL_NAMES,
  SPACE_MODELS,
  ResNet,
  TinyCNN,
  WideResNet,
  default_model_config,
  get_model,
  model_from_config,
)


def test_names():
  assert set(MODEL_NAMES) == {
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet20",
    "resnet56",
    "wrn",
    "cifar_resnet",
    "tiny_cnn",
    "nb201",
    "darts_cells",
    "econas_cells",
    "shufflenetv2",
    "mobilenetv2",
    "fishnet99",
    "fishnet150",
    "shufflenet_spos",
    "crnas_resnet",
  }


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_default_config_builds_its_model(name):
  cfg = default_model_config(name)
  assert cfg.name == name and cfg.dtype == "float32"
  model = model_from_config(cfg, 10)
  assert model.num_classes == 10
  assert model.dtype == jnp.float32 if name not in SPACE_MODELS else model.arch is None


def test_default_config_fields():
  assert set(default_model_config("resnet18")) == {"name", "dtype", "width", "stem", "se"}
  assert dict(default_model_config("cifar_resnet")) == {
    "name": "cifar_resnet",
    "dtype": "float32",
    "depth": 20,
    "width": 16,
    "stem": "cifar",
  }
  assert dict(default_model_config("wrn")) == {
    "name": "wrn",
    "dtype": "float32",
    "depth": 28,
    "width": 10,
    "dropout": 0.0,
  }
  assert dict(default_model_config("tiny_cnn")) == {
    "name": "tiny_cnn",
    "dtype": "float32",
    "width": 8,
  }


def test_built_modules():
  r20 = get_model("resnet20", 10)
  assert isinstance(r20, ResNet)
  assert (r20.stage_sizes, r20.stage_widths, r20.shortcut) == ((3, 3, 3), (16, 32, 64), "pad")
  r56 = get_model("resnet56", 100, dtype="bfloat16")
  assert r56.stage_sizes == (9, 9, 9) and r56.dtype == jnp.bfloat16 and r56.num_classes == 100
  r34 = get_model("resnet34", 10)
  assert (r34.stage_sizes, r34.shortcut) == ((3, 4, 6, 3), "projection")
  proxy = get_model("cifar_resnet", 10, depth=8, width=8)
  assert (proxy.stage_sizes, proxy.stage_widths) == ((1, 1, 1), (8, 16, 32))
  assert isinstance(get_model("tiny_cnn", 10), TinyCNN)
  assert get_model("tiny_cnn", 10).width == 8


def test_model_from_config_overrides():
  cfg = default_model_config("wrn")
  cfg.depth, cfg.width, cfg.dropout, cfg.dtype = 16, 8, 0.3, "bfloat16"
  model = model_from_config(cfg, 100)
  assert isinstance(model, WideResNet)
  assert (model.depth, model.width, model.dropout, model.num_classes) == (16, 8, 0.3, 100)
  assert model.dtype == jnp.bfloat16
  # Plain mappings and missing model-specific fields (defaults) work too.
  model = model_from_config({"name": "cifar_resnet", "depth": 32}, 10)
  assert model.stage_sizes == (5, 5, 5) and model.stage_widths == (16, 32, 64)


@pytest.mark.parametrize("name", ["resnet", "ResNet18", "vgg16", "", None, 18])
def test_unknown_name(name):
  with pytest.raises(ConfigError, match="valid names: resnet18, resnet34") as err:
    get_model(name, 10)
  assert "tiny_cnn" in str(err.value)
  with pytest.raises(ConfigError, match="valid names"):
    model_from_config(ml_collections.ConfigDict({"name": name}), 10)


@pytest.mark.parametrize("depth", [2, 7, 10, 21, 0, -4, 20.0, True, "20"])
def test_bad_cifar_resnet_depth(depth):
  with pytest.raises(ConfigError, match="depth"):
    get_model("cifar_resnet", 10, depth=depth)


@pytest.mark.parametrize("depth", [4, 8, 20, 26, 29, 28.0])
def test_bad_wrn_depth(depth):
  with pytest.raises(ConfigError, match="depth") as err:
    model_from_config(ml_collections.ConfigDict({"name": "wrn", "depth": depth}), 10)
  if isinstance(depth, int) and depth > 4:
    assert "6n+4" in str(err.value) and "28" in str(err.value)


@pytest.mark.parametrize("depth", [8, 14, 20, 110])
def test_good_cifar_resnet_depths(depth):
  n = (depth - 2) // 6
  assert get_model("cifar_resnet", 10, depth=depth).stage_sizes == (n, n, n)


@pytest.mark.parametrize(
  "name,kwargs,match",
  [
    ("cifar_resnet", {"width": 0}, "width"),
    ("tiny_cnn", {"width": 2.5}, "width"),
    ("wrn", {"dropout": 1.0}, "dropout"),
    ("wrn", {"dropout": -0.1}, "dropout"),
    ("wrn", {"dropout": "0.3"}, "dropout"),
    ("resnet18", {"depth": 18}, "does not accept field"),
    ("resnet20", {"width": 16}, "does not accept field"),
    ("tiny_cnn", {"depth": 3}, "accepted: width"),
  ],
)
def test_bad_fields(name, kwargs, match):
  with pytest.raises(ConfigError, match=match):
    get_model(name, 10, **kwargs)


@pytest.mark.parametrize("dtype", ["float16", "fp32", jnp.float16, jnp.int32, None])
def test_bad_dtype(dtype):
  with pytest.raises(ConfigError, match="bfloat16"):
    get_model("tiny_cnn", 10, dtype=dtype)


@pytest.mark.parametrize("num_classes", [0, -1, 2.0, None])
def test_bad_num_classes(num_classes):
  with pytest.raises(ConfigError, match="num_classes"):
    get_model("tiny_cnn", num_classes)


def test_model_from_config_errors():
  with pytest.raises(ConfigError, match="no 'name'"):
    model_from_config(ml_collections.ConfigDict({"depth": 20}), 10)
  with pytest.raises(ConfigError, match="does not accept field"):
    model_from_config(ml_collections.ConfigDict({"name": "resnet20", "depth": 32}), 10)
  with pytest.raises(ConfigError, match="dtype"):
    model_from_config(ml_collections.ConfigDict({"name": "resnet20", "dtype": "half"}), 10)
  with pytest.raises(ConfigError, match="ConfigDict"):
    model_from_config("resnet20", 10)


# --- search-space networks --------------------------------------------------------------------

NB201_ARCH = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|"
# Tiny sizes of each space network: (fields, encoding length).
SPACE_PROXIES = {
  "nb201": ({"channels": 4, "cells_per_stage": 1}, 6),
  "darts_cells": ({"channels": 4, "layers": 1, "stem_multiplier": 1}, 32),  # one reduction cell
  "econas_cells": ({"channels": 4, "cells_per_stage": 1, "num_nodes": 1, "stem_multiplier": 1}, 8),
  "shufflenet_spos": ({"width": 0.125, "stage_blocks": (1, 1, 1, 1)}, 4),
}


def test_space_default_configs():
  assert dict(default_model_config("nb201")) == {
    "name": "nb201",
    "dtype": "float32",
    "channels": 16,
    "cells_per_stage": 5,
    "arch": "",
  }
  assert set(default_model_config("darts_cells")) == {
    "name",
    "dtype",
    "channels",
    "layers",
    "stem_multiplier",
    "arch",
  }
  assert default_model_config("econas_cells").num_nodes == 5


def test_space_builds():
  from jaxml.spaces import DARTS_V2, DARTSSpace, NB201Space

  arr = get_model("nb201", 100, channels=8, cells_per_stage=2)
  assert arr == NB201Space(channels=8, cells_per_stage=2, num_classes=100).network()
  fixed = model_from_config({"name": "nb201", "arch": NB201_ARCH}, 10)
  assert fixed.arch == (3, 0, 3, 1, 0, 0) and (fixed.channels, fixed.cells_per_stage) == (16, 5)
  darts = get_model("darts_cells", 10, arch=str(DARTS_V2))
  assert darts.arch == tuple(DARTSSpace().from_genotype(DARTS_V2))
  assert (darts.channels, len(darts.layout)) == (36, 20)
  econas = get_model("econas_cells", 10, channels=8, cells_per_stage=2, num_nodes=3)
  assert (econas.channels, econas.num_nodes, len(econas.layout), econas.arch) == (8, 3, 8, None)


@pytest.mark.parametrize("name", SPACE_MODELS)
def test_space_forward_shapes_with_an_encoding(name):
  """The array build traces a forward pass with `encoding=` as the engine calls it (no compute)."""
  fields, length = SPACE_PROXIES[name]
  model = get_model(name, 5, **fields)
  x, enc = jnp.zeros((2, 8, 8, 3)), jnp.zeros((length,), jnp.int32)
  init = lambda e: model.init_with_output(jax.random.key(0), x, train=False, encoding=e)
  out, shapes = jax.eval_shape(init, enc)
  assert out.shape == (2, 5) and out.dtype == jnp.float32 and "params" in shapes
  with pytest.raises(ConfigError, match="needs an encoding"):
    jax.eval_shape(lambda v: model.apply(v, x, train=False), shapes)


def test_nb201_forward_array_build_equals_fixed_arch():
  """`arch=<string>` builds the cell the array build computes for that string's encoding."""
  from jaxml.spaces import NB201Space
  from jaxml.spaces.counting import init_shapes

  fields, _ = SPACE_PROXIES["nb201"]
  arr = get_model("nb201", 5, **fields)
  fixed = get_model("nb201", 5, arch=NB201_ARCH, **fields)
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 8, 8, 3)), jnp.float32)
  enc = jnp.asarray(NB201Space().from_string(NB201_ARCH))
  rng = np.random.default_rng(1)
  fill = lambda s: jnp.asarray(rng.uniform(0.5, 1.5, s.shape), s.dtype)
  variables = jax.tree.map(fill, init_shapes(arr, x, encoding=enc))
  jit = lambda f: jax.jit(f, compiler_options={"xla_backend_optimization_level": 0})
  y_arr = jit(lambda v, e: arr.apply(v, x, encoding=e))(variables, enc)
  y_fixed = jit(fixed.apply)(variables, x)  # Flax takes the superset of variables
  assert y_arr.shape == (2, 5) and np.isfinite(y_arr).all()
  np.testing.assert_allclose(y_arr, y_fixed, rtol=2e-4, atol=2e-5)
  with pytest.raises(ConfigError, match="fixed build"):
    fixed.apply(variables, x, encoding=enc)


@pytest.mark.parametrize(
  "name,kwargs,match",
  [
    ("nb201", {"width": 8}, "accepted: channels, cells_per_stage, arch"),
    ("nb201", {"channels": 0}, "channels"),
    ("nb201", {"cells_per_stage": 1.5}, "cells_per_stage"),
    ("nb201", {"arch": "|conv~0|"}, "bad config.model.arch"),
    ("nb201", {"arch": "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|bad~2|"}, "arch"),
    ("nb201", {"arch": None}, "arch must be a string"),
    ("nb201", {"arch": (3, 0, 3, 1, 0, 0)}, "arch must be a string"),
    ("darts_cells", {"cells_per_stage": 2}, "does not accept field"),
    ("darts_cells", {"layers": 0}, "layers"),
    ("darts_cells", {"arch": "Genotype("}, "bad config.model.arch"),
    ("econas_cells", {"num_nodes": 0}, "num_nodes"),
    ("econas_cells", {"stem_multiplier": True}, "stem_multiplier"),
  ],
)
def test_bad_space_fields(name, kwargs, match):
  with pytest.raises(ConfigError, match=match):
    get_model(name, 10, **kwargs)
  with pytest.raises(ConfigError, match=match):
    model_from_config({"name": name, **kwargs}, 10)


@pytest.mark.parametrize("name", SPACE_MODELS)
def test_space_networks_are_float32_only(name):
  with pytest.raises(ConfigError, match="float32' only"):
    model_from_config({"name": name, "dtype": "bfloat16"}, 10)
