"""FishNet-99 / -150: parameter counts against Sun et al. 2018, and shapes at both stems.

Counts are at 224 px, 1000 classes, ImageNet stem, from jax.eval_shape (no compute).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml.errors import ConfigError
from jaxml.models import count_params, get_model
from jaxml.models.fishnet import FishBlock


@pytest.mark.parametrize(
  "name,params,paper_m",
  # Sun et al. 2018 (NeurIPS) Table 1 / the authors' README: FishNet-99 16.62 M,
  # FishNet-150 24.96 M parameters: ours are within the paper's last printed digit (0.01 M;
  # 16.6289 M is printed as 16.62, so the table does not round consistently).
  [("fishnet99", 16_628_904, 16.62), ("fishnet150", 24_959_400, 24.96)],
)
def test_imagenet_param_counts(name, params, paper_m):
  model = get_model(name, 1000, stem="imagenet")
  x = jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32)
  shapes = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
  n = count_params(shapes["params"])
  assert n == params and abs(n / 1e6 - paper_m) < 0.01


@pytest.mark.parametrize("stem,size", [("cifar", 16), ("imagenet", 64)])
def test_forward_shapes_and_the_concatenated_widths(abstract_forward, stem, size):
  logits, variables = abstract_forward("fishnet99", size, width=8, stem=stem)
  assert logits.shape == (2, 10) and logits.dtype == jnp.float32
  params = variables["params"]
  # Planes at width 8 (x 1/8): head input of the score layer = 200 + 64 (stage-4 feature).
  assert params["score_conv"]["kernel"].shape == (1, 1, 264, 132)
  # Body stage 6 (k = 2): an UP block has no shortcut conv, only the 3 bottleneck convs.
  assert set(params["stage6_block1"]) == {"conv1", "conv2", "conv3", "bn1", "bn2", "bn3"}
  assert params["stage6_block1"]["conv1"]["kernel"].shape == (1, 1, 96, 12)


def test_up_block_shortcut_sums_adjacent_channel_pairs():
  """Sun et al. §3.2 channel-wise reduction: shortcut channel i = x[2i] + x[2i+1]."""
  block = FishBlock(4, up_k=2)
  x = jnp.arange(8.0).reshape(1, 1, 1, 8)
  variables = block.init(jax.random.key(0), x, train=False)
  zero = jax.tree.map(jnp.zeros_like, variables["params"])  # branch outputs 0
  y = block.apply({**variables, "params": zero}, x, train=False)
  np.testing.assert_array_equal(y[0, 0, 0], [1.0, 5.0, 9.0, 13.0])


def test_input_side_must_fit_the_down_sampling():
  with pytest.raises(ConfigError, match="divisible by 8"):
    jax.eval_shape(
      lambda: get_model("fishnet99", 10, width=4).init(
        jax.random.key(0), jnp.zeros((1, 12, 12, 3)), train=False
      )
    )
