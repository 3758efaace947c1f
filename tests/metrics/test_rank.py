"""Rank metrics: cross-checked against scipy.stats on random and tied data, inside jit."""

import jax
import numpy as np
import pytest
import scipy.stats

from jaxml.metrics import rank


def _cases():
  rng = np.random.default_rng(0)
  for n in (5, 1000):
    x = rng.normal(size=n)
    yield f"cont{n}", x, 0.5 * x + rng.normal(size=n)
    xt = rng.integers(0, 6, n).astype(np.float64)  # heavy ties in both
    yield f"ties{n}", xt, xt + rng.integers(0, 3, n)
    yield f"mixed{n}", xt, -x  # ties in one only, negative correlation


CASES = list(_cases())


@jax.jit
def all_metrics(x, y):
  # One compiled program per input length keeps the test fast.
  return rank.rankdata(x), rank.spearman(x, y), rank.kendall_tau(x, y)


@pytest.mark.parametrize("name,x,y", CASES, ids=[c[0] for c in CASES])
def test_against_scipy(name, x, y):
  ranks, rho, tau = all_metrics(x, y)
  np.testing.assert_allclose(ranks, scipy.stats.rankdata(x), atol=1e-5)
  np.testing.assert_allclose(rho, scipy.stats.spearmanr(x, y)[0], atol=1e-5)
  np.testing.assert_allclose(tau, scipy.stats.kendalltau(x, y)[0], atol=1e-5)


def test_perfect_reversed_and_constant():
  x = np.arange(5.0)
  _, rho, tau = all_metrics(x, x**3)
  assert float(rho) == pytest.approx(1.0, abs=1e-6) and float(tau) == pytest.approx(1.0, abs=1e-6)
  _, rho, tau = all_metrics(x, -x)
  assert float(rho) == pytest.approx(-1.0, abs=1e-6)
  assert float(tau) == pytest.approx(-1.0, abs=1e-6)
  _, rho, tau = all_metrics(np.ones(5), x)  # constant input: NaN, like scipy
  assert np.isnan(rho) and np.isnan(tau)


def test_kendall_block_size_does_not_matter():
  rng = np.random.default_rng(1)
  x, y = rng.normal(size=1000), rng.integers(0, 4, 1000).astype(float)
  tau = jax.jit(rank.kendall_tau, static_argnames="block_size")(x, y, block_size=96)
  np.testing.assert_allclose(tau, all_metrics(x, y)[2], atol=1e-7)


def test_topk_overlap_and_precision():
  target = np.array([9.0, 8.0, 7.0, 6.0, 5.0, 4.0])
  pred = np.array([0.0, 8.0, 7.0, 9.0, 5.0, 4.0])  # ranks item 3 first, item 0 last
  assert float(rank.topk_overlap(pred, target, 3)) == pytest.approx(2 / 3)
  assert float(rank.precision_at_k(pred, target, 3)) == pytest.approx(2 / 3)
  assert float(jax.jit(rank.topk_overlap, static_argnums=2)(target, target, 4)) == 1.0
  assert float(rank.topk_overlap(-target, target, 3)) == 0.0


def test_precision_counts_ties_with_the_kth_best():
  target = np.array([3.0, 2.0, 2.0, 1.0])
  pred = np.array([5.0, 1.0, 4.0, 0.0])  # picks items 0 and 2; item 2 ties the true 2nd best
  assert float(rank.precision_at_k(pred, target, 2)) == 1.0
  assert float(rank.topk_overlap(pred, target, 2)) == 0.5  # top_k breaks the tie by index


def test_random_overlap_matches_brute_force():
  rng = np.random.default_rng(2)
  for _ in range(5):
    p, t = rng.normal(size=100), rng.normal(size=100)
    k = 10
    want = len(set(np.argsort(-p)[:k]) & set(np.argsort(-t)[:k])) / k
    assert float(rank.topk_overlap(p, t, k)) == pytest.approx(want)


def test_rank_metrics_subsets_keys_and_none():
  truth = np.arange(8.0)
  scores = np.asarray([0.0, 2, 1, 3, 4, 6, 5, 7])
  top = np.asarray([7, 6, 5, 4])
  out = rank.rank_metrics(
    scores,
    truth,
    {"all": None, "top": top, "tiny": np.arange(8) < 2, "flat": np.arange(8) >= 6},
    min_size=3,
    precision={"p@2": (2, None)},
  )
  want = scipy.stats.kendalltau(scores[top], truth[top]).statistic
  assert abs(out["kendall_top"] - want) < 1e-6
  assert abs(out["spearman_all"] - scipy.stats.spearmanr(scores, truth).statistic) < 1e-6
  assert out["kendall_tiny"] is None  # fewer than min_size entries
  const = rank.rank_metrics(np.ones(4), np.arange(4.0), key="{subset}{stat}")
  assert const == {"kendall": None, "spearman": None}  # a constant score has no ranking
  assert out["p@2"] == 0.5  # top-2 by score: cells 7 and 5; by truth: 7 and 6
