"""The search spaces' analytic `flops` (jaxml/spaces) against the one jaxpr counter, count_flops.

The spaces count multiply-adds as the NAS-Bench-201 API does, which adds one per output of a
layer with a bias (here only the classifier's `num_classes`); count_flops counts 2 FLOPs per
multiply-add of the convs and matrix products. So for every fixed network:
space.flops(enc) == count_flops(forward) / 2 + num_classes, exactly. Shapes only (no compute).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml.metrics.flops import count_flops
from jaxml.spaces import DARTSSpace, EcoNASSpace, NB201Space

NUM_CLASSES, SIZE = 7, 8
SPACES = {
  "nb201": NB201Space(channels=4, cells_per_stage=1, input_size=SIZE, num_classes=NUM_CLASSES),
  "darts": DARTSSpace(
    channels=4, layers=3, input_size=SIZE, num_classes=NUM_CLASSES, stem_multiplier=1
  ),
  "econas": EcoNASSpace(
    channels=4, cells_per_stage=1, input_size=SIZE, num_classes=NUM_CLASSES, num_nodes=2
  ),
}


@pytest.mark.parametrize("name", SPACES)
def test_analytic_flops_equal_the_jaxpr_count(name):
  space = SPACES[name]
  rng = np.random.default_rng(0)
  x = jax.ShapeDtypeStruct((1, SIZE, SIZE, 3), jnp.float32)
  for _ in range(2):
    enc = rng.integers(0, space.bounds(), size=(space.encoding_length,)).astype(np.int32)
    net = space.network(enc)
    shapes = jax.eval_shape(lambda x: net.init(jax.random.key(0), x, train=False), x)  # noqa: B023
    flops = count_flops(lambda v, x: net.apply(v, x, train=False), shapes, x)  # noqa: B023
    assert space.flops(enc) == flops / 2 + NUM_CLASSES
