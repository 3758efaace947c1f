"""Copies that differ in architecture: K NAS-Bench-201 cells as one population.

The population steps the search space's ARRAY build (`get_model('nb201')`, arch ''), each copy
with its own encoding in `hparams['model']['encoding']` (int32[K, 6]). Copy k must train and
evaluate exactly as cell k trained alone (K = 1 with copy k's keys). The array build's equality
with the FIXED build of each cell (the sub-tree of the same weights, per-copy stacked weights,
eval and train mode) is tested in tests/spaces/test_nb201.py (`test_array_build_equals_fixed_build`,
`test_vmap_over_stacked_weights`) and through the registry's `arch` field in
tests/models/test_model_registry.py; it is not repeated here.

Compile time dominates (the array build computes every candidate op: ~320 XLA:CPU kernels for one
copy's step at C = 4, N = 1), so the test uses the proxy size C = 4, N = 1, 8x8 images, batch 8,
populations built with `fast_compile=True` (`population.FAST_COMPILE_CPU`, init included) and
one K = 1 reference engine for all four cells (the encoding is an array input, so one compiled
program serves every cell; the engines' identical per-copy inits hit the session's persistent
compilation cache, tests/conftest.py). Every side of each comparison is compiled the same way.
"""

import chex
import jax
import numpy as np
import pytest
from population_fixtures import NUM_CLASSES, init_keys, make_engine

from jaxml.models import get_model
from jaxml.population import Population
from jaxml.spaces import NB201Space

STEPS = 3
# Four different cells; together they use every op on several edges (none, skip, conv 1x1,
# conv 3x3, avg pool), and no cell is all-none (that cell's output would not depend on the cell).
CELLS = (
  "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|",
  "|nor_conv_1x1~0|+|skip_connect~0|avg_pool_3x3~1|+|nor_conv_3x3~0|none~1|nor_conv_1x1~2|",
  "|avg_pool_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|none~0|skip_connect~1|avg_pool_3x3~2|",
  "|skip_connect~0|+|avg_pool_3x3~0|none~1|+|nor_conv_1x1~0|nor_conv_3x3~1|skip_connect~2|",
)
K = len(CELLS)
ENCODINGS = np.stack([NB201Space().from_string(c) for c in CELLS]).astype(np.int32)


def nb201_engine(pop):
  """The tiny-data engine stepping the NB201 array build at the proxy size."""
  return make_engine(pop, model=get_model("nb201", NUM_CLASSES, channels=4, cells_per_stage=1))


class Cells:
  """The engine of the NB201 array build for `size` copies (fast-compiling population)."""

  def __init__(self, size: int, mapping: str):
    self.pop = Population(size, mapping, fast_compile=True)
    self.engine = nb201_engine(self.pop)

  def hparams(self, encodings):
    return {"model": {"encoding": np.asarray(encodings, np.int32)}}

  def init(self, keys, encodings):
    """Copy i from (param key i, rng key i) with encoding i (`Engine.init_from_keys`)."""
    return self.engine.init_from_keys(*keys, self.hparams(encodings))

  def train(self, state, encodings, steps: int = STEPS):
    """`steps` engine steps -> (state, last metrics on the host)."""
    hp, metrics = self.pop.put_copies(self.hparams(encodings)), None
    for s in range(steps):
      state, metrics = self.engine.step(state, hp, {}, s)
    return state, jax.device_get(metrics)

  def evaluate(self, state, encodings):
    return self.engine.evaluate(state, "val", self.hparams(encodings))


@pytest.fixture(scope="module")
def references():
  """Cell k trained alone (K = 1, copy k's keys): [(state, metrics, val eval)] per cell."""
  cells = Cells(1, "loop")
  pkeys, rkeys = init_keys(K)
  first = lambda tree: jax.tree.map(lambda x: np.asarray(x)[0], tree)
  out = []
  for k in range(K):
    enc = ENCODINGS[k : k + 1]
    state = cells.init((pkeys[k : k + 1], rkeys[k : k + 1]), enc)
    state, metrics = cells.train(state, enc)
    out.append((first(state), first(metrics), first(cells.evaluate(state, enc))))
  return out


# Copies per population: 'loop' unrolls one array build per copy into the compiled step (~12 s of
# compile each on 2 cores), so it runs the first two cells; 'vmap' compiles one and runs all four.
SIZES = {"loop": 2, "vmap": K}


@pytest.fixture(scope="module")
def populations():
  """mapping -> (Cells, population of the first SIZES[mapping] cells after STEPS steps, metrics)."""
  cache = {}

  def get(mapping):
    if mapping not in cache:
      n = SIZES[mapping]
      cells = Cells(n, mapping)
      keys = tuple(k[:n] for k in init_keys(K))  # copy k's keys as in the references
      state = cells.init(keys, ENCODINGS[:n])
      cache[mapping] = (cells, *cells.train(state, ENCODINGS[:n]))
    return cache[mapping]

  return get


@pytest.mark.slow  # >20 s on 2 cores: keeps the README tier under 10 min; CI's slow tier runs it
@pytest.mark.parametrize("mapping", ["loop", "vmap"])
def test_population_of_cells_equals_separate_runs(populations, references, mapping):
  _, state, metrics = populations(mapping)
  np.testing.assert_array_equal(np.asarray(state.step), [STEPS] * SIZES[mapping])
  for k, (ref, ref_metrics, _) in enumerate(references[: SIZES[mapping]]):
    got = jax.tree.map(lambda x, k=k: np.asarray(x)[k], state)
    if mapping == "loop":  # copy k runs the K = 1 graph with its own encoding: bit-identical
      chex.assert_trees_all_equal(got.params, ref.params)
      chex.assert_trees_all_equal(got.batch_stats, ref.batch_stats)
    else:  # vmap batches the convolutions: equal up to float reassociation
      chex.assert_trees_all_close(got.params, ref.params, atol=1e-5, rtol=1e-5)
      chex.assert_trees_all_close(got.batch_stats, ref.batch_stats, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(metrics["loss"][k], ref_metrics["loss"], rtol=1e-5)


@pytest.mark.slow  # >20 s on 2 cores (its populations fixture): CI's slow tier runs it
def test_eval_with_per_copy_encodings(populations, references):
  """Each copy is evaluated as its own cell: the K = 1 evaluation of that cell.

  On the 'vmap' population (its eval compiles in ~2 s; the 'loop' one, 4 unrolled copies, ~11 s):
  its weights equal the references' to 1e-5, so do the losses.
  """
  cells, state, _ = populations("vmap")
  result = cells.evaluate(state, ENCODINGS)
  for k, (_, _, ref) in enumerate(references):
    np.testing.assert_allclose(result["accuracy"][k], ref["accuracy"])
    np.testing.assert_allclose(result["loss"][k], ref["loss"], rtol=1e-5)
  # The cells compute different functions, and the encoding is what picks each copy's cell:
  # the same weights evaluated with the encodings rotated give other losses.
  assert len(set(np.round(result["loss"], 6))) == K
  rotated = cells.evaluate(state, np.roll(ENCODINGS, 1, axis=0))
  assert not np.allclose(rotated["loss"], result["loss"], rtol=1e-4)
