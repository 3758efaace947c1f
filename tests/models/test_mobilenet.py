"""MobileNetV2: counts against Sandler et al. 2018 Table 4, width multiplier rounding, shapes.

Counts are at 224 px, 1000 classes, ImageNet stem, from shapes only (eval_shape + jaxpr FLOPs).
"""

import jax.numpy as jnp
import pytest

from jaxml.models.mobilenet import make_divisible


def test_imagenet_counts_match_table_4(abstract_costs):
  n, macs = abstract_costs("mobilenetv2", stem="imagenet")
  # Exactly torchvision's mobilenet_v2 (3,504,872, 300.77 M multiply-adds, same layer layout).
  assert n == 3_504_872
  # Sandler et al. 2018 Table 4: MobileNetV2 (1.0) 3.4 M params, 300 M multiply-adds. Params
  # within 5 %: the table rounds to 3.4 M what the reference implementations count as 3.47 M
  # (TF-slim) to 3.50 M (torchvision, BN scale/offset included, as here): 3.1 % over.
  assert n == pytest.approx(3.4e6, rel=0.05)
  # Multiply-adds within 1 %: convs + the classifier's matrix product give 300.77 M.
  assert macs == pytest.approx(300e6, rel=0.01)


def test_width_multiplier_rounds_to_multiples_of_8():
  assert [make_divisible(c * 0.35) for c in (32, 16, 24, 96, 320)] == [16, 8, 8, 32, 112]
  assert make_divisible(1280 * 1.4) == 1792


@pytest.mark.parametrize("stem,size", [("cifar", 16), ("imagenet", 32)])
def test_forward_shapes(abstract_forward, stem, size):
  logits, variables = abstract_forward(
    "mobilenetv2", size, width_mult=0.25, blocks=(1, 1, 1, 1, 1, 1, 1), stem=stem
  )
  assert logits.shape == (2, 10) and logits.dtype == jnp.float32
  params = variables["params"]
  assert "expand" not in params["stage1_block1"]  # t = 1: no expansion conv
  assert params["stage2_block1"]["dw"]["kernel"].shape == (3, 3, 1, 48)  # depthwise, 6 x 8
  assert params["last_conv"]["kernel"].shape[-1] == 1280
