"""CRNAS's greedy beam search (`jaxml.search.beam_search`): exactly K = 3 partial architectures
kept per block, the top-K rule against brute force, completions, and the found optimum of a
separable fitness."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml.errors import ConfigError
from jaxml.search.beam_search import UNDECIDED, BeamSearch
from jaxml.spaces.crnas import CRDilationSpace

SPACE = CRDilationSpace(width=2, input_size=8, allocation=(1, 2, 2, 1))  # 6 blocks x 3
L = SPACE.encoding_length
WEIGHTS = np.random.default_rng(0).normal(size=(L, 3)).astype(np.float32)


def partial_score(partial):
  """Separable fitness of a partial architecture: decided positions only."""
  p = np.asarray(partial)
  return np.sum(np.where(p >= 0, WEIGHTS[np.arange(L), np.maximum(p, 0)], 0.0), -1)


def run(search, score=partial_score):
  ask, tell = jax.jit(search.ask), jax.jit(search.tell)
  state = search.init()
  states = []
  for _ in range(search.num_steps):
    state, cands = ask(state)
    state = tell(state, cands, jnp.asarray(score(cands), jnp.float32))
    states.append(state)
  return states


def test_keeps_exactly_three_partial_architectures_per_block():
  search = BeamSearch(SPACE, beam_size=3)
  assert search.ask_size == 9
  for t, state in enumerate(run(search)):
    beam, scores = np.asarray(state.beam), np.asarray(state.scores)
    assert int(state.position) == t + 1
    assert np.isfinite(scores).sum() == 3, t  # three members after every block
    assert len({tuple(r) for r in beam}) == 3  # distinct
    assert (beam[:, : t + 1] >= 0).all() and (beam[:, t + 1 :] == UNDECIDED).all()
    # The kept three are the top three of all extensions of the previous beam (brute force).
    prev = run_prefixes(t)
    want = sorted(partial_score(np.asarray(prev)), reverse=True)[:3]
    np.testing.assert_allclose(np.sort(scores)[::-1], want, rtol=1e-6)


def run_prefixes(t):
  """Every extension at position t of the previous beam (all prefixes at t = 0)."""
  if t == 0:
    rows = [[c] + [UNDECIDED] * (L - 1) for c in range(3)]
    return rows
  beam = np.asarray(run(BeamSearch(SPACE, 3))[t - 1].beam)
  rows = []
  for b, c in itertools.product(beam, range(3)):
    r = b.copy()
    r[t] = c
    rows.append(r)
  return rows


def test_separable_fitness_reaches_the_optimum_and_beam_one_is_greedy():
  final = run(BeamSearch(SPACE, 3))[-1]
  best = np.asarray(BeamSearch(SPACE, 3).best(final))
  np.testing.assert_array_equal(best, WEIGHTS.argmax(1))
  greedy = run(BeamSearch(SPACE, 1))[-1]
  assert np.isfinite(np.asarray(greedy.scores)).sum() == 1
  np.testing.assert_array_equal(np.asarray(greedy.beam[0]), WEIGHTS.argmax(1))


def test_beam_beats_greedy_on_an_interaction():
  """A pair interaction greedy misses (position 0 looks worse alone) but a beam of 3 keeps."""

  def score(cands):
    c = np.asarray(cands)
    s = partial_score(c) * 0.0
    s += np.where(c[:, 0] == 1, -1.0, 0.0) + np.where(c[:, 0] == 0, -0.5, 0.0)
    s += np.where((c[:, 0] == 1) & (c[:, 1] == 2), 5.0, 0.0)
    return s

  best3 = np.asarray(BeamSearch(SPACE, 3).best(run(BeamSearch(SPACE, 3), score)[-1]))
  best1 = np.asarray(BeamSearch(SPACE, 1).best(run(BeamSearch(SPACE, 1), score)[-1]))
  assert tuple(best3[:2]) == (1, 2)
  assert best1[0] == 2  # greedy took the best-looking first value


def test_completions_keep_decided_positions_and_cover_the_rest():
  search = BeamSearch(SPACE, 3)
  partial = np.full((2, L), UNDECIDED, np.int32)
  partial[0, :2] = (2, 1)
  full = np.asarray(search.complete(jax.random.key(0), jnp.asarray(partial), 64))
  assert full.shape == (64, 2, L)
  assert (full[:, 0, :2] == (2, 1)).all()
  assert ((full >= 0) & (full < 3)).all()
  assert len(np.unique(full[:, 1, 0])) == 3  # undecided positions vary over completions
  with pytest.raises(ConfigError, match="beam_size"):
    BeamSearch(SPACE, 0)
