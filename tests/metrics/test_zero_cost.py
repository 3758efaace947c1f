"""Zero-cost proxies (`jaxml.metrics.zero_cost`) against values computed by hand on tiny networks,
and the NB201 array build's scores against the fixed build's (the masking of unselected ops)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxml.errors import ConfigError
from jaxml.metrics import zero_cost as zc
from jaxml.spaces import NB201Space


class TwoLayer(nn.Module):
  @nn.compact
  def __call__(self, x):
    h = nn.relu(nn.Dense(3, use_bias=False, name="fc1")(x))
    return nn.Dense(1, use_bias=False, name="fc2")(h)


def test_synflow_by_hand():
  # |W1| = [[1, 2], [3, .5]], |W2| = [2, 1]; the all-ones input gives h = [4, 2.5], R = 10.5.
  # dR/dW2 = h: sum |W2 * h| = 8 + 2.5; dR/dW1[i, j] = |W2[j]|: 1*2 + 2*1 + 3*2 + .5*1 = 10.5.
  class Net(nn.Module):
    @nn.compact
    def __call__(self, x):
      h = nn.relu(nn.Dense(2, use_bias=False, name="fc1")(x))
      return nn.Dense(1, use_bias=False, name="fc2")(h)

  params = {
    "fc1": {"kernel": jnp.array([[1.0, -2.0], [3.0, 0.5]])},
    "fc2": {"kernel": jnp.array([[2.0], [-1.0]])},
  }
  score = zc.synflow(lambda p, x: Net().apply({"params": p}, x), params, (2,))
  assert float(score) == pytest.approx(21.0)


def test_snip_and_grad_norm_by_hand():
  x = jnp.array([[1.0, 0.0], [0.0, 2.0]])
  y = jnp.array([0, 2])
  w = jnp.array([[1.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
  # Cross-entropy of a linear layer: dL/dW = x^T (softmax(xW) - onehot(y)) / B.
  logits = np.array([[1.0, 0.0, -1.0], [0.0, 2.0, 0.0]])
  p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
  g = np.array([[1.0, 0.0], [0.0, 2.0]]).T @ (p - np.eye(3)[[0, 2]]) / 2
  loss = lambda k: jnp.mean(optax.softmax_cross_entropy(x @ k, jax.nn.one_hot(y, 3)))
  grads = {"fc": {"kernel": jax.grad(loss)(w)}}
  params = {"fc": {"kernel": w}}
  assert float(zc.snip(params, grads)) == pytest.approx(np.abs(np.asarray(w) * g).sum(), rel=1e-5)
  assert float(zc.grad_norm(grads)) == pytest.approx(np.sqrt((g * g).sum()), rel=1e-5)


def test_naswot_by_hand():
  # h = x W1 = [[1, -1, .5], [-1, 1, .5], [0, 0, 1]]: patterns [101], [011], [001];
  # K = agreements = [[3, 1, 2], [1, 3, 2], [2, 2, 3]], det K = 8.
  x = jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
  params = {
    "fc1": {"kernel": jnp.array([[1.0, -1.0, 0.5], [-1.0, 1.0, 0.5]])},
    "fc2": {"kernel": jnp.ones((3, 1))},
  }
  sites = lambda m: "input" if m.name == "fc2" else None
  interceptor, codes = zc.capture_relu_patterns(sites, lambda m: jnp.ones(()))
  with nn.intercept_methods(interceptor):
    TwoLayer().apply({"params": params}, x)
  assert len(codes) == 1
  np.testing.assert_array_equal(np.asarray(codes[0][0]), [[1, 0, 1], [0, 1, 1], [0, 0, 1]])
  assert float(zc.naswot(codes)) == pytest.approx(np.log(8.0), rel=1e-5)
  # A site with weight 0 (an unselected op of an array build) adds nothing.
  doubled = codes + [(codes[0][0], jnp.zeros(()))]
  assert float(zc.naswot(doubled)) == pytest.approx(np.log(8.0), rel=1e-5)


ENCODINGS = np.array([[3, 1, 2, 4, 3, 0], [1, 0, 0, 2, 4, 1]], np.int32)


@pytest.fixture(scope="module")
def nb201_batch():
  rng = np.random.default_rng(0)
  return rng.integers(0, 256, (8, 8, 8, 3)).astype(np.uint8), rng.integers(0, 10, 8)


@pytest.mark.slow  # >20 s on 2 cores: keeps the README tier under 10 min; CI's slow tier runs it
def test_array_build_scores_equal_the_fixed_build(nb201_batch):
  # Compiles dominate: the array build's score program and one fixed build per architecture.
  images, labels = nb201_batch
  space = NB201Space(2, 1, 10, 8)
  scores = zc.nb201_scores(space, ENCODINGS, images, labels, seed=3)
  # Same keys and parameter names: the fixed builds start from the same weights.
  fixed = zc.nb201_scores(space, ENCODINGS, images, labels, seed=3, build="fixed")
  for name in zc.TRAINING_FREE:
    np.testing.assert_allclose(scores[name], fixed[name], rtol=2e-4, err_msg=name)
  # A different cell scores differently (the encoding reaches the array build).
  assert scores["naswot"][0] != pytest.approx(scores["naswot"][1], rel=1e-3)
  np.testing.assert_array_equal(scores["params"], space.params(ENCODINGS))
  np.testing.assert_array_equal(fixed["flops"], space.flops(ENCODINGS))
  assert np.all(np.isfinite(scores["synflow"])) and np.all(scores["synflow"] > 0)


@pytest.mark.slow  # >20 s on 2 cores: keeps the README tier under 10 min; CI's slow tier runs it
def test_a_subset_of_measures_scores_as_the_whole(nb201_batch):
  images, labels = nb201_batch
  space = NB201Space(2, 1, 10, 8)
  every = zc.nb201_scores(space, ENCODINGS, images, labels, seed=3)
  some = zc.nb201_scores(space, ENCODINGS, images, labels, seed=3, measures=("synflow", "params"))
  assert set(some) == {"synflow", "params"}
  np.testing.assert_allclose(some["synflow"], every["synflow"], rtol=1e-6)
  assert set(zc.nb201_scores(space, ENCODINGS, images, labels, measures=("flops",))) == {"flops"}


def test_bad_inputs(nb201_batch):
  images, labels = nb201_batch
  space = NB201Space(2, 1, 10, 8)
  with pytest.raises(ConfigError, match="batch of >= 2"):
    zc.nb201_scores(space, ENCODINGS, images[:1], labels[:1])
  with pytest.raises(ConfigError, match="name some of"):
    zc.nb201_scores(space, ENCODINGS, images, labels, measures=("accuracy",))
  with pytest.raises(ConfigError, match="build='both'"):
    zc.nb201_scores(space, ENCODINGS, images, labels, build="both")
  with pytest.raises(ConfigError, match="op indices"):
    zc.nb201_scores(space, ENCODINGS + 5, images, labels)
