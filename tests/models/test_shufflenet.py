"""ShuffleNet V2: parameter and FLOP counts against Ma et al. 2018 Table 5, shapes, SE, shuffle.

Counts are at 224 px and 1000 classes with the ImageNet stem, from shapes only (eval_shape and the
jaxpr FLOP counter), so each costs about a second.
"""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxml.models.shufflenet import channel_shuffle


@pytest.mark.parametrize(
  "scale,params,paper_params_m,paper_mflops",
  [
    # Ma et al. 2018 Table 5: 1.0x 146 M FLOPs / 2.3 M params, 2.0x 591 M / 7.4 M. The exact
    # counts equal torchvision's shufflenet_v2_x1_0 / x2_0 (2,278,604 / 7,393,996).
    (1.0, 2_278_604, 2.3, 146),
    (2.0, 7_393_996, 7.4, 591),
  ],
)
def test_imagenet_counts_match_table_5(abstract_costs, scale, params, paper_params_m, paper_mflops):
  n, macs = abstract_costs("shufflenetv2", scale=scale, stem="imagenet")
  assert n == params
  assert round(n / 1e6, 1) == paper_params_m
  # The paper's "FLOPs" are multiply-adds. Tolerance 2 %: our jaxpr count (convs + the dense
  # layer) is 144.9 M / 583.3 M, 0.8 % / 1.3 % under the table, which rounds and does not say
  # what else it counts (e.g. the classifier's bias or the shuffles' data movement).
  assert macs == pytest.approx(paper_mflops * 1e6, rel=0.02)


def test_se_adds_a_gate_to_every_unit(abstract_costs):
  plain, plain_macs = abstract_costs("shufflenetv2", scale=1.0, stem="imagenet")
  se, se_macs = abstract_costs("shufflenetv2", scale=1.0, stem="imagenet", se=True)
  # One SE per unit on its 58/116/232-channel branch (reduction 16: 3/7/14 hidden units):
  # 4 x (58*3+3 + 3*58+58) + 8 x (116*7+7 + 7*116+116) + 4 x (232*14+14 + 14*232+232).
  expected = 4 * (2 * 58 * 3 + 3 + 58) + 8 * (2 * 116 * 7 + 7 + 116) + 4 * (2 * 232 * 14 + 14 + 232)
  assert se - plain == expected
  assert se_macs > plain_macs


@pytest.mark.parametrize("stem,size", [("cifar", 16), ("imagenet", 64)])
@pytest.mark.parametrize("se", [False, True])
def test_forward_shapes(abstract_forward, stem, size, se):
  logits, variables = abstract_forward(
    "shufflenetv2", size, scale=0.5, units=(1, 2, 1), stem=stem, se=se
  )
  assert logits.shape == (2, 10) and logits.dtype == jnp.float32
  assert ("se" in variables["params"]["stage2_unit1"]) == se
  assert variables["batch_stats"]["conv5_bn"]["mean"].shape == (1024,)


def test_channel_shuffle_interleaves_the_two_halves():
  x = jnp.arange(8.0).reshape(1, 1, 1, 8)
  np.testing.assert_array_equal(channel_shuffle(x, 2)[0, 0, 0], [0, 4, 1, 5, 2, 6, 3, 7])
