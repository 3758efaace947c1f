"""DARTS space: genotype strings, the DARTS_V2 constant and its published size, the builds."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxml.errors import ConfigError
from jaxml.spaces import DARTS_V1, DARTS_V2, DARTSSpace, Genotype, module_costs
from jaxml.spaces.counting import init_shapes

FULL = DARTSSpace()
TINY = DARTSSpace(channels=4, layers=3, input_size=8)  # cells: normal, reduce, reduce

# quark0/darts cnn/genotypes.py writes the genotypes with list concats; this is that style.
V2_REFERENCE_STYLE = (
  "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
  "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
  "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
  "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
  "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)


def test_genotype_round_trips():
  enc = FULL.from_genotype(DARTS_V2)
  assert enc.shape == (32,) and enc.dtype == np.int32
  # to_string prints exactly the namedtuple repr (concat as range(2, 6)).
  assert FULL.to_string(enc) == repr(DARTS_V2)
  np.testing.assert_array_equal(FULL.from_string(repr(DARTS_V2)), enc)
  np.testing.assert_array_equal(FULL.from_string(V2_REFERENCE_STYLE), enc)
  assert FULL.to_genotype(enc) == DARTS_V2
  # Positional fields and a qualified name parse too.
  positional = repr(DARTS_V2).replace("normal=", "").replace("normal_concat=", "")
  positional = positional.replace("reduce=", "").replace("reduce_concat=", "")
  np.testing.assert_array_equal(FULL.from_string("genotypes." + positional), enc)
  v1 = FULL.from_genotype(DARTS_V1)
  assert FULL.to_genotype(v1) == DARTS_V1 and not np.array_equal(v1, enc)


def test_encoding_layout():
  enc = FULL.from_genotype(DARTS_V2)
  # [cell][node][slot][(input, op)]: normal node 0 = (sep_conv_3x3 <- 0, sep_conv_3x3 <- 1).
  sep3, maxp, skip = (FULL.OPS.index(o) for o in ("sep_conv_3x3", "max_pool_3x3", "skip_connect"))
  np.testing.assert_array_equal(enc[:4], [0, sep3, 1, sep3])
  np.testing.assert_array_equal(enc[16:20], [0, maxp, 1, maxp])
  np.testing.assert_array_equal(enc[-4:], [2, skip, 1, maxp])


@pytest.mark.parametrize(
  "text,match",
  [
    ("Genotype(normal=[", "cannot parse"),
    ("Foo(1, 2, 3, 4)", "looks like Genotype"),
    (repr(DARTS_V2).replace("'dil_conv_3x3', 2", "'conv_9x9', 2"), "unknown op"),
    (repr(DARTS_V2).replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 5)"), "inputs 0..4"),
    (repr(DARTS_V2).replace("normal_concat=range(2, 6)", "normal_concat=[4, 5]"), "concatenate"),
    (repr(DARTS_V2).replace(", ('dil_conv_3x3', 2)]", "]"), "8 \\(op, input\\) pairs"),
    (repr(DARTS_V2).replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', x)"), "not a literal"),
    (repr(DARTS_V2).replace("reduce_concat", "extra"), "unexpected"),
    (repr(DARTS_V2).replace("('dil_conv_3x3', 2)", "('dil_conv_3x3',)"), "op_name, input"),
  ],
)
def test_genotype_errors(text, match):
  with pytest.raises(ConfigError, match=match):
    FULL.from_string(text)


def test_darts_v2_published_size():
  # DARTS paper, Table 1: DARTS (second order) on CIFAR-10, 3.3M params. The reference code
  # logs "param size = 3.349342MB" (quark0/darts cnn/train.py, count_parameters_in_MB = count
  # / 1e6, auxiliary head excluded) for the default genotype DARTS = DARTS_V2 with
  # --init_channels 36 --layers 20. Both the analytic count and the built network agree.
  enc = FULL.from_genotype(DARTS_V2)
  assert FULL.params(enc) == 3_349_342
  macs, params = module_costs(FULL.network(enc), jnp.zeros((1, 32, 32, 3)))
  assert params == 3_349_342
  # No published CIFAR MAC count was found to check against; analytic == counted is.
  assert FULL.flops(enc) == macs


def test_analytic_costs_match_counted_costs(rand_encs):
  space = DARTSSpace(channels=8, layers=5, num_classes=100, input_size=16)
  x = jnp.zeros((1, 16, 16, 3))
  for enc in rand_encs(space, 1, seed=5):
    assert module_costs(space.network(enc), x) == (space.flops(enc), space.params(enc))


def test_param_names():
  enc = TINY.from_genotype(DARTS_V2)
  enc[16:20] = [0, TINY.OPS.index("sep_conv_5x5"), 1, TINY.OPS.index("skip_connect")]
  params = init_shapes(TINY.network(enc), jnp.zeros((1, 8, 8, 3)))["params"]
  assert sorted(params) == ["cell0", "cell1", "cell2", "classifier", "stem_bn", "stem_conv"]
  assert "node3_slot1_dil_conv_3x3" in params["cell0"]
  # Reduction cell: ops on the cell inputs run at stride 2 (suffix _s2); skip is then a
  # FactorizedReduce; pools and identities have no parameters.
  assert {"node0_slot0_sep_conv_5x5_s2", "node0_slot1_skip_connect_s2"} <= set(params["cell1"])
  assert "conv0" in params["cell2"]["pre0"]  # reduce after reduce: FactorizedReduce preprocess


def _encodings(rand_encs):
  # Random architectures plus one whose node 3 takes the same (input, op) twice.
  dup = TINY.from_genotype(DARTS_V2)
  dup[12:16] = [2, TINY.OPS.index("sep_conv_3x3")] * 2
  return np.concatenate([rand_encs(TINY, 1, seed=1), dup[None]])


@pytest.mark.slow  # >20 s on 2 cores: keeps the README tier under 10 min; CI's slow tier runs it
@pytest.mark.parametrize("train", [False, True])
def test_array_build_equals_fixed_build(fixed_matches_array, rand_encs, train):
  x = np.random.default_rng(0).normal(size=(4, 8, 8, 3)).astype(np.float32)
  fixed_matches_array(TINY, x, _encodings(rand_encs), train, vmap=False)


def test_genotype_namedtuple():
  g = Genotype(**DARTS_V2._asdict())
  assert g._fields == ("normal", "normal_concat", "reduce", "reduce_concat")
  with pytest.raises(ConfigError, match="not a DARTS genotype"):
    FULL.from_genotype(object())
