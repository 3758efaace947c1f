"""The AM-LFS loss family: identity = cross-entropy, special cases, monotonicity, finite grads."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxml import losses
from jaxml.errors import ConfigError

TAU = losses.tau_function(5)
# The losses as the train step runs them, compiled: eager op-by-op dispatch compiles every
# primitive (and every primitive of a gradient) as its own XLA program, which cost this file
# ~40 CPU-s on a 2-core CPU. The functions (tau, t) are static: frozen dataclasses.
amlfs_loss = jax.jit(losses.amlfs_loss, static_argnames=("tau", "t", "scale"))
log_tau = jax.jit(losses.log_tau, static_argnames="tau")
cross_entropy = jax.jit(optax.softmax_cross_entropy_with_integer_labels)
apply = jax.jit(lambda f, params, x: f(params, x), static_argnums=0)  # f: a PiecewiseLinear


def _logits_labels(n=512, classes=10, scale=4.0, seed=0):
  logits = scale * jax.random.normal(jax.random.key(seed), (n, classes))
  return logits, jnp.arange(n) % classes


def test_identity_is_cross_entropy():
  logits, labels = _logits_labels()
  ce = cross_entropy(logits, labels)
  ce_grad = jax.jit(jax.grad(lambda z: cross_entropy(z, labels).sum()))
  for m in (1, 5):
    tau = losses.tau_function(m)
    got = amlfs_loss(logits, labels, tau, jnp.zeros(tau.num_params))
    np.testing.assert_allclose(got, ce, rtol=1e-6, atol=1e-6)
    grad = jax.jit(jax.grad(lambda z, t=tau: amlfs_loss(z, labels, t, jnp.zeros(m + 1)).sum()))
    np.testing.assert_allclose(grad(logits), ce_grad(logits), atol=1e-6)
  # t = identity on cosines (params 0) with scale s is cross-entropy on s * cos too.
  t = losses.t_function(4)
  cos = jnp.tanh(logits / 4)
  got = amlfs_loss(30 * cos, labels, TAU, jnp.zeros(6), t, jnp.zeros(5), scale=30.0)
  ce = cross_entropy(30 * cos, labels)
  np.testing.assert_allclose(got, ce, rtol=1e-5, atol=1e-5)


def test_piecewise_linear_is_continuous_increasing_and_hits_its_knots():
  f = losses.PiecewiseLinear(-1.0, 1.0, 6)
  params = jnp.asarray(np.random.default_rng(0).normal(0, 1.0, 7), jnp.float32)
  x = jnp.linspace(-1.2, 1.2, 2001)
  y = f(params, x)
  assert bool(jnp.all(jnp.diff(y) > 0))  # strictly increasing, also past the domain ends
  z = f.knots()
  eps = 1e-4  # no jump at any knot
  np.testing.assert_allclose(f(params, z[1:-1] - eps), f(params, z[1:-1] + eps), atol=1e-3)
  np.testing.assert_allclose(f(params, z), f.knot_values(params), atol=1e-6)
  np.testing.assert_allclose(f(jnp.zeros(7), x), x, atol=1e-6)
  with pytest.raises(ConfigError, match="interval"):
    losses.PiecewiseLinear(0.0, 1.0, 0)


def test_tau_is_normalised_increasing_with_start_offset():
  params = jnp.asarray([0.5, 0.3, -0.4, 0.0, 0.2, 0.9])
  p = jnp.linspace(0.0, 1.0, 501)
  tau = jnp.exp(log_tau(TAU, params, jnp.log(p)))
  assert bool(jnp.all(jnp.diff(tau) > 0))
  assert float(tau[-1]) == pytest.approx(1.0, abs=1e-6)
  norm = 0.5 + float(jnp.sum(jnp.exp(params[1:]) * 0.2))
  assert float(tau[0]) == pytest.approx(0.5 / norm, rel=1e-5)  # bounded loss at p = 0
  # A negative offset is tau(0) = 0: cross-entropy's behaviour at badly fitted examples.
  low = log_tau(TAU, params.at[0].set(-1.0), jnp.log(jnp.asarray([1e-30, 1e-3])))
  slope0_over_norm = float(jnp.exp(params[1]) / jnp.sum(jnp.exp(params[1:]) * 0.2))
  np.testing.assert_allclose(low, np.log([1e-30, 1e-3]) + np.log(slope0_over_norm), rtol=1e-5)


@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_focal_loss_is_approximated(gamma):
  tau = losses.tau_function(50)
  params = tau.params_from_function(lambda p: losses.focal_tau(p, gamma))
  p = np.linspace(0.05, 1.0, 200)
  got = -np.asarray(log_tau(tau, params, jnp.log(jnp.asarray(p, jnp.float32))))
  want = -((1.0 - p) ** gamma) * np.log(p)
  np.testing.assert_allclose(got, want, atol=0.02)


def test_cosface_exact_and_arcface_approximated():
  t = losses.t_function(5)
  m = 0.35
  cos = jnp.linspace(-1.0, 1.0, 101)
  np.testing.assert_allclose(
    apply(t, t.params_from_function(lambda x: x - m), cos), cos - m, atol=1e-5
  )
  # CosFace loss: cross-entropy on s * (cos_j, cos_y - m).
  logits, labels = _logits_labels(64)
  cosines = jnp.tanh(logits / 4)
  s = 16.0
  cosface = amlfs_loss(
    s * cosines, labels, TAU, jnp.zeros(6), t, t.params_from_function(lambda x: x - m), scale=s
  )
  margin = s * (cosines - m * jax.nn.one_hot(labels, 10))
  np.testing.assert_allclose(cosface, cross_entropy(margin, labels), rtol=1e-5, atol=1e-5)
  # ArcFace: increasing for cos > cos(pi - m); on that range the interpolant is O(width^2) close
  # where its curvature is bounded (d/dx acos x blows up at x = 1: looser in the last pieces).
  lo = float(np.cos(np.pi - 0.5)) + 1e-3
  t_fine = losses.PiecewiseLinear(lo, 1.0, 40)
  arc = lambda x: losses.arcface_t(x, 0.5)  # noqa: E731
  x = np.linspace(lo, 1.0, 300)
  got = apply(t_fine, t_fine.params_from_function(arc), jnp.asarray(x, jnp.float32))
  inner = x <= 0.9
  np.testing.assert_allclose(got[inner], arc(x[inner]), atol=2e-3)
  np.testing.assert_allclose(got, arc(x), atol=0.05)
  with pytest.raises(ValueError, match="increasing"):
    t.params_from_function(arc)  # not monotone on all of [-1, 1]


@pytest.mark.parametrize("offset", [0.0, 0.3])
def test_gradients_finite_at_the_domain_ends(offset):
  params = jnp.asarray([offset, 0.4, -0.3, 0.2, 0.0, 1.0])
  # p -> 0 (a label the net gets very wrong), p -> 1 (a fitted one), p at knots.
  logits = jnp.asarray([[-80.0, 80.0], [80.0, -80.0], [0.0, 0.0], [np.log(0.4 / 0.6), 0.0]])
  labels = jnp.asarray([0, 0, 0, 0])
  grads = jax.jit(jax.grad(lambda z: amlfs_loss(z, labels, TAU, params).sum()))(logits)
  assert bool(jnp.all(jnp.isfinite(grads)))
  t = losses.t_function(5)
  cos = jnp.asarray([[-1.0, 1.0], [1.0, -1.0], [0.0, 0.2], [0.6, -0.4]])
  tp = jnp.asarray([-0.2, 0.1, 0.3, -0.5, 0.2, 0.0])
  g = jax.jit(jax.grad(lambda c: amlfs_loss(30 * c, labels, TAU, params, t, tp, 30.0).sum()))(cos)
  assert bool(jnp.all(jnp.isfinite(g)))
