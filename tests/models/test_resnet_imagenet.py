"""ResNet-50 with the ImageNet stem against He et al. 2016, SE blocks (Hu et al. 2018), and the
CIFAR / ImageNet stems of the ResNets. Counts from shapes only (eval_shape + jaxpr FLOPs)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml.models.layers import SqueezeExcite


def test_resnet50_imagenet_counts(abstract_costs):
  n, macs = abstract_costs("resnet50", stem="imagenet")
  # torchvision resnet50 (stride on the 3x3, "v1.5"): 25,557,032 params = the common 25.6 M.
  assert n == 25_557_032
  # 4.1 G multiply-adds is the common count of this layout (torchvision: 4.09 G); He et al.
  # 2016 Table 1 prints 3.8 G for the original stride-on-the-first-1x1 block. Within 1 %.
  assert macs == pytest.approx(4.1e9, rel=0.01)


def test_se_resnet50_adds_hu_et_al_parameters(abstract_costs):
  plain, _ = abstract_costs("resnet50", stem="imagenet")
  se, _ = abstract_costs("resnet50", stem="imagenet", se=True)
  # Hu et al. 2018 §4: "~2.5 million additional parameters" (r = 16): exactly
  # sum over the 16 blocks of 2 C^2 / 16 + C / 16 + C, with C = 256 x3, 512 x4, 1024 x6, 2048 x3.
  blocks = [(256, 3), (512, 4), (1024, 6), (2048, 3)]
  assert se - plain == sum(n * (2 * c * c // 16 + c // 16 + c) for c, n in blocks)
  assert round((se - plain) / 1e6, 1) == 2.5


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
@pytest.mark.parametrize("stem,size", [("cifar", 8), ("imagenet", 32)])
@pytest.mark.parametrize("se", [False, True])
def test_forward_shapes(abstract_forward, name, stem, size, se):
  logits, variables = abstract_forward(name, size, width=4, stem=stem, se=se)
  assert logits.shape == (2, 10) and logits.dtype == jnp.float32
  params = variables["params"]
  assert params["stem_conv"]["kernel"].shape[:2] == ((7, 7) if stem == "imagenet" else (3, 3))
  assert ("se" in params["stage1_block1"]) == se


def test_squeeze_excite_gates_channels_by_their_pooled_mean():
  """Hu et al. Eq. 2-4 with hand-set weights: gate_c = sigmoid(W2 relu(W1 z) + b2)."""
  x = jnp.stack([jnp.ones((2, 2)), 2 * jnp.ones((2, 2))], axis=-1)[None]  # channel means 1, 2
  se = SqueezeExcite(reduction=2)
  params = se.init(jax.random.key(0), x)["params"]
  params = {
    "reduce": {"kernel": jnp.asarray([[1.0], [1.0]]), "bias": jnp.zeros(1)},  # z = 3
    "expand": {"kernel": jnp.asarray([[1.0, -1.0]]), "bias": jnp.zeros(2)},
  }
  y = se.apply({"params": params}, x)
  np.testing.assert_allclose(y[0, 0, 0], [1.0 * nn.sigmoid(3.0), 2.0 * nn.sigmoid(-3.0)], rtol=1e-6)
