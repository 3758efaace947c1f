"""REINFORCE over policies: sampling, additive statistics, log-probabilities, gradients against
closed forms, baselines, frozen log-std, and a bandit per policy."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxml.errors import ConfigError
from jaxml.search import reinforce

POLICIES = {
  "categorical": reinforce.Categorical(num_factors=2, num_choices=3),
  "gaussian": reinforce.DiagonalGaussian(
    dim=3, learn_log_std=True, init_mean=(0.5, -1.0, 0.0), init_log_std=(-0.5, 0.0, 0.3)
  ),
}
NAMES = list(POLICIES)
SGD1 = optax.sgd(1.0)  # one object: optimizers are static arguments
ADAM = optax.adam(0.1)
_update = jax.jit(reinforce.update, static_argnames=("policy", "optimizer", "baseline"))
_sample = jax.jit(lambda policy, k, p, shape: policy.sample(k, p, shape), static_argnums=(0, 3))


def random_params(name: str, seed: int = 0):
  rng = np.random.default_rng(seed)
  if name == "categorical":
    return jnp.asarray(rng.normal(size=(2, 3)), jnp.float32)
  return {
    "mean": jnp.asarray(rng.normal(size=3), jnp.float32),
    "log_std": jnp.asarray(rng.normal(0.0, 0.3, size=3), jnp.float32),
  }


def copies(policy, params, seed: int = 0):
  """Draws [4, 5, ...]: 4 copies x 5 draws from the policy, and their stacked stats.
  (One shape for every test: each new shape costs a compilation.)"""
  samples = _sample(policy, jax.random.key(seed), params, (4, 5))
  return samples, jax.vmap(policy.stats)(samples)


def log_density(name: str, params, x) -> np.ndarray:
  """log p(x) per draw, in float64 NumPy: the reference the policies are checked against."""
  x = np.asarray(x, np.float64)
  if name == "categorical":
    theta = np.asarray(params, np.float64)
    logp = theta - np.log(np.exp(theta).sum(-1, keepdims=True))
    return logp[np.arange(theta.shape[0]), x.astype(int)].sum(-1)
  mu, log_std = (np.asarray(params[k], np.float64) for k in ("mean", "log_std"))
  z = (x - mu) / np.exp(log_std)
  return np.sum(-0.5 * z**2 - log_std - 0.5 * math.log(2 * math.pi), axis=-1)


@pytest.mark.parametrize("name", NAMES)
def test_init_and_sample_shapes(name):
  policy = POLICIES[name]
  params = policy.init_params()
  state = reinforce.init(policy, ADAM)
  chex.assert_trees_all_equal(state.params, params)
  assert int(state.step) == 0
  width = 2 if name == "categorical" else 3
  for shape in ((), (4, 5)):  # (4, 5): the shape `copies` compiles anyway
    x = _sample(policy, jax.random.key(1), params, shape)
    chex.assert_shape(x, shape + (width,))
    assert x.dtype == (jnp.int32 if name == "categorical" else jnp.float32)
  hash(policy)  # frozen dataclasses: usable as static jit arguments


@pytest.mark.parametrize("name", NAMES)
def test_stats_are_additive(name):
  policy = POLICIES[name]
  samples, _ = copies(policy, random_params(name))
  a, b = samples[0], samples[1:]
  both = policy.stats(samples)  # any leading shape: [4, 5, ...] = [5, ...] and [3, 5, ...]
  summed = jax.tree.map(jnp.add, policy.stats(a), policy.stats(b))
  chex.assert_trees_all_close(both, summed, rtol=1e-6)
  plus_zero = jax.tree.map(jnp.add, policy.zero_stats(), policy.stats(a))
  chex.assert_trees_all_equal(plus_zero, policy.stats(a))
  chex.assert_trees_all_equal_shapes(policy.zero_stats(), both)


@pytest.mark.parametrize("name", NAMES)
def test_mean_log_prob_is_the_average_log_density(name):
  policy, params = POLICIES[name], random_params(name)
  samples, stats = copies(policy, params)
  got = jax.vmap(policy.mean_log_prob, in_axes=(None, 0))(params, stats)
  want = log_density(name, params, samples).mean(axis=1)
  np.testing.assert_allclose(got, want, rtol=1e-5)
  assert float(policy.mean_log_prob(params, policy.zero_stats())) == 0.0  # nothing drawn


@pytest.mark.parametrize("name", NAMES)
def test_reinforce_gradient_matches_closed_form(name):
  """SGD(lr=1) ascends J, so params move by exactly grad J; compare with the closed forms."""
  policy, params = POLICIES[name], random_params(name)
  samples, stats = copies(policy, params)
  rewards = jnp.array([0.3, 0.9, 0.1, 0.5])
  adv = np.asarray(rewards - rewards.mean(), np.float64)
  state = reinforce.init(policy, SGD1).replace(params=params)
  new, info = _update(policy, state, SGD1, stats, rewards, baseline="mean")
  np.testing.assert_allclose(info["advantage"], adv, rtol=1e-6)
  x = np.asarray(samples, np.float64)
  if name == "categorical":
    # Advantage-weighted (empirical frequency - softmax), averaged over copies.
    freq = np.asarray(stats, np.float64) / np.asarray(stats).sum(-1, keepdims=True)
    p = np.asarray(jax.nn.softmax(params, axis=-1), np.float64)
    want = np.mean(adv[:, None, None] * (freq - p), axis=0)
    np.testing.assert_allclose(new.params - params, want, rtol=1e-5, atol=1e-6)
  else:
    mu = np.asarray(params["mean"], np.float64)
    var = np.exp(2 * np.asarray(params["log_std"], np.float64))
    d_mean = np.mean(adv[:, None] * np.mean((x - mu) / var, axis=1), axis=0)
    d_log_std = np.mean(adv[:, None] * np.mean((x - mu) ** 2 / var - 1.0, axis=1), axis=0)
    np.testing.assert_allclose(new.params["mean"] - params["mean"], d_mean, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(
      new.params["log_std"] - params["log_std"], d_log_std, rtol=1e-4, atol=1e-6
    )


@pytest.mark.parametrize("name", NAMES)
def test_identical_rewards_with_mean_baseline_do_not_move_the_policy(name):
  policy = POLICIES[name]
  state = reinforce.init(policy, ADAM)
  _, stats = copies(policy, state.params)
  new, info = _update(policy, state, ADAM, stats, jnp.full(4, 0.7), baseline="mean")
  chex.assert_trees_all_equal(new.params, state.params)
  np.testing.assert_array_equal(info["advantage"], np.zeros(4))
  assert int(new.step) == 1


def test_ema_baseline_is_used_then_updated():
  policy = POLICIES["categorical"]
  state = reinforce.init(policy, SGD1)
  stats = jnp.ones((2, 2, 3))
  s1, i1 = _update(policy, state, SGD1, stats, jnp.array([1.0, 3.0]), baseline="ema")
  np.testing.assert_allclose(i1["baseline"], 2.0)  # first update: its own mean
  np.testing.assert_allclose(s1.baseline, 2.0)
  s2, i2 = _update(policy, s1, SGD1, stats, jnp.array([5.0, 7.0]), baseline="ema")
  np.testing.assert_allclose(i2["baseline"], 2.0)  # used before the update
  np.testing.assert_allclose(i2["advantage"], [3.0, 5.0])
  np.testing.assert_allclose(s2.baseline, 0.9 * 2.0 + 0.1 * 6.0, rtol=1e-6)
  _, i3 = _update(policy, state, SGD1, stats, jnp.array([1.0, 3.0]), baseline="none")
  np.testing.assert_allclose(i3["advantage"], [1.0, 3.0])


def test_centred_ranks():
  r = reinforce.centred_ranks(jnp.array([0.3, 0.9, 0.1, 0.9]))
  np.testing.assert_allclose(r, [1 / 3 - 0.5, 2.5 / 3 - 0.5, -0.5, 2.5 / 3 - 0.5], rtol=1e-6)
  assert float(jnp.sum(r)) == pytest.approx(0.0, abs=1e-6)
  np.testing.assert_array_equal(reinforce.centred_ranks(jnp.array([0.4])), [0.0])


def test_rank_baseline_uses_only_the_order_of_the_rewards():
  """Scaling or shifting the rewards leaves the rank update unchanged (the mean one scales)."""
  policy = POLICIES["categorical"]
  state = reinforce.init(policy, SGD1)
  stats = jnp.asarray(np.random.default_rng(0).integers(0, 5, (4, 2, 3)), jnp.float32)
  rewards = jnp.array([0.50, 0.52, 0.49, 0.60])
  a, ia = _update(policy, state, SGD1, stats, rewards, baseline="rank")
  b, ib = _update(policy, state, SGD1, stats, 10 * rewards - 3, baseline="rank")
  np.testing.assert_allclose(ia["advantage"], [-1 / 6, 1 / 6, -0.5, 0.5], rtol=1e-6)
  chex.assert_trees_all_close(a.params, b.params)
  np.testing.assert_array_equal(ia["advantage"], ib["advantage"])


@pytest.mark.parametrize("name", NAMES)
def test_bad_arguments_raise(name):
  policy = POLICIES[name]
  state = reinforce.init(policy, ADAM)
  _, stats = copies(policy, state.params)
  with pytest.raises(ConfigError, match="baseline"):
    reinforce.update(policy, state, ADAM, stats, jnp.ones(4), baseline="median")
  with pytest.raises(ConfigError, match="ema_decay"):
    reinforce.update(policy, state, ADAM, stats, jnp.ones(4), baseline="ema", ema_decay=1.0)
  with pytest.raises(ValueError, match="leading copy axis"):
    reinforce.update(policy, state, ADAM, stats, jnp.ones(3))


def test_policy_config_errors():
  with pytest.raises(ConfigError, match="num_choices"):
    reinforce.Categorical(1, 0)
  with pytest.raises(ConfigError, match="init_mean"):
    reinforce.DiagonalGaussian(2, init_mean=(0.0, 1.0, 2.0))


def test_frozen_log_std_never_moves():
  # Even under AdamW, whose weight decay moves params without any gradient.
  policy = reinforce.DiagonalGaussian(2, learn_log_std=False, init_mean=1.0, init_log_std=-0.7)
  opt = optax.adamw(0.1, weight_decay=0.5)
  state = reinforce.init(policy, opt)
  for seed in range(3):
    _, stats = copies(policy, state.params, seed)
    state, _ = _update(policy, state, opt, stats, jnp.arange(4.0), baseline="mean")
  np.testing.assert_array_equal(state.params["log_std"], np.full(2, -0.7, np.float32))
  assert not np.allclose(state.params["mean"], 1.0)


@pytest.mark.parametrize("name", NAMES)
def test_a_bandit_converges(name):
  """8 copies draw once per update, Adam lr 0.1. Categorical: 3 arms, arm 2 pays most; Gaussian:
  reward -(x - 2)^2 per dimension, so the mean must travel to 2 and (learned) sigma shrink."""
  policy = {
    "categorical": reinforce.Categorical(1, 3),
    "gaussian": reinforce.DiagonalGaussian(2, learn_log_std=True),
  }[name]
  arm_reward = jnp.array([0.2, 0.5, 0.9])

  def reward(x):
    if name == "categorical":
      return arm_reward[x[:, 0]]
    return -jnp.sum((x - 2.0) ** 2, axis=-1)

  def step(state, key):
    x = policy.sample(key, state.params, (8,))
    stats = jax.vmap(policy.stats)(x)
    state, info = reinforce.update(policy, state, ADAM, stats, reward(x), baseline="mean")
    return state, info["entropy"]

  keys = jax.random.split(jax.random.key(0), 300)
  final, ent = jax.jit(lambda s, k: jax.lax.scan(step, s, k))(reinforce.init(policy, ADAM), keys)
  assert ent[-1] < ent[0]
  assert int(final.step) == 300
  if name == "categorical":
    assert jax.nn.softmax(final.params)[0, 2] > 0.9
  else:
    np.testing.assert_allclose(final.params["mean"], [2.0, 2.0], atol=0.25)
    assert (final.params["log_std"] < -0.5).all()


def test_categorical_stats_entropy_and_kl():
  policy = reinforce.Categorical(2, 3)
  samples = jnp.array([[0, 2], [1, 2], [0, 0], [0, 2]])
  counts = policy.stats(samples)
  np.testing.assert_array_equal(counts, [[3, 1, 0], [1, 0, 3]])
  assert counts.dtype == jnp.float32
  np.testing.assert_array_equal(policy.stats(samples.reshape(2, 2, 2)), counts)
  uniform = policy.init_params()
  np.testing.assert_allclose(policy.entropy(uniform), 2 * np.log(3), rtol=1e-6)
  np.testing.assert_allclose(policy.kl_from_uniform(uniform), 0.0, atol=1e-6)
  assert policy.kl_from_uniform(jnp.array([[10.0, 0.0, 0.0], [0.0, 0.0, 0.0]])) > 1.0
  # OHL's shape: one factor over 1,296 pairs, a batch of draws per step.
  ohl = reinforce.Categorical(1, 1296)
  chex.assert_shape(ohl.stats(jnp.array([[5], [1295], [5]])), (1, 1296))
  assert float(ohl.stats(jnp.array([[5], [1295], [5]]))[0, 5]) == 2.0


@pytest.mark.parametrize("name", NAMES)
def test_sample_frequencies_match_the_policy(name):
  policy, params = POLICIES[name], random_params(name, seed=2)
  x = np.asarray(_sample(policy, jax.random.key(3), params, (4000,)))
  if name == "categorical":
    freq = np.asarray(policy.stats(x)) / 4000
    np.testing.assert_allclose(freq, jax.nn.softmax(params, axis=-1), atol=0.03)
  else:
    np.testing.assert_allclose(x.mean(0), params["mean"], atol=0.06)
    np.testing.assert_allclose(np.log(x.std(0)), params["log_std"], atol=0.05)
    want = np.sum(np.asarray(params["log_std"]) + 0.5 * np.log(2 * np.pi * np.e))
    np.testing.assert_allclose(policy.entropy(params), want, rtol=1e-6)


def test_direction_consistency_of_steady_flipping_and_noisy_updates():
  """+1 when every update's gradient estimate points the same way, -1 when they alternate, ~0
  when rewards are noise."""
  k, d = 4, 3
  x = np.zeros((2, k, d))
  x[:, :, 0] = [-1.0, -0.5, 0.5, 1.0]  # the draws spread along the first axis
  mu = np.zeros((2, d))
  steady = np.array([[0.0, 0.1, 0.2, 0.3]] * 2)  # reward grows along it both times
  assert reinforce.direction_consistency(x, mu, steady) == pytest.approx(1.0)
  flipped = np.stack([steady[0], -steady[0]])
  assert reinforce.direction_consistency(x, mu, flipped) == pytest.approx(-1.0)
  assert np.isnan(reinforce.direction_consistency(x, mu, np.zeros((2, k))))  # no updates
  rng = np.random.default_rng(0)
  t = 400
  noise = reinforce.direction_consistency(
    rng.standard_normal((t, k, d)), np.zeros((t, d)), rng.standard_normal((t, k))
  )
  assert abs(noise) < 0.1  # mean of 399 cosines of independent directions in 3-D
