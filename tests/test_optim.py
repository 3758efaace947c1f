"""Large-batch optimisation (jaxml.training): LARS masks, linear scaling + warm-up rates, and
Goyal et al. 2017's momentum correction."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from train_fixtures import final_params, run_killed_after_first_save

from jaxml import configs, main, training
from jaxml.errors import ConfigError
from jaxml.models import get_model


def _lars(**overrides):
  fields = dict(optimizer="lars", lr=0.5, momentum=0.0, weight_decay=0.0, schedule="constant")
  return configs.optim_config(**{**fields, **overrides})


def test_lars_mask_is_exactly_the_conv_and_dense_kernels():
  model = get_model("resnet18", 10, width=4, se=True)
  shapes = jax.eval_shape(
    lambda: model.init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)), train=False)
  )["params"]
  flat = jax.tree_util.tree_flatten_with_path(training.lars_mask(shapes))[0]
  masked = {jax.tree_util.keystr(p) for p, m in flat if m}
  kernels = {
    jax.tree_util.keystr(p)
    for p, leaf in jax.tree_util.tree_flatten_with_path(shapes)[0]
    if p[-1].key == "kernel"
  }
  assert masked == kernels
  # 20 convs (17 + 3 projections), 2 x 8 SE dense layers, the head: 37 kernels; everything
  # else (BN scale/bias, SE and head biases) is excluded.
  assert len(masked) == 37 and len(flat) - len(masked) == 2 * 20 + 2 * 8 + 1


def test_trust_ratio_and_weight_decay_touch_only_the_kernels():
  """One LARS step (no momentum): kernels move by lr * tc * |w| / |g + wd w| * (g + wd w), biases
  and BN parameters by plain lr * g (You et al. 2017 Alg. 1, with the exclusions)."""
  lr, tc, wd = 0.5, 0.001, 1e-2
  tx = training.make_optimizer(_lars(lr=lr, trust_coefficient=tc, weight_decay=wd), lr)
  params = {
    "conv": {"kernel": jnp.full((3, 3, 2, 4), 2.0)},
    "bn": {"scale": jnp.ones(4), "bias": jnp.full((4,), 0.5)},
    "head": {"kernel": jnp.full((4, 3), -1.0), "bias": jnp.ones(3)},
  }
  grads = jax.tree.map(lambda p: jnp.linspace(-1.0, 1.0, p.size).reshape(p.shape), params)
  updates, _ = tx.update(grads, tx.init(params), params)
  for layer in ("conv", "head"):
    w, g = params[layer]["kernel"], grads[layer]["kernel"]
    d = g + wd * w
    ratio = tc * jnp.linalg.norm(w) / jnp.linalg.norm(d)
    np.testing.assert_allclose(updates[layer]["kernel"], -lr * ratio * d, rtol=1e-5)
  for path in (("bn", "scale"), ("bn", "bias"), ("head", "bias")):
    np.testing.assert_allclose(updates[path[0]][path[1]], -lr * grads[path[0]][path[1]], rtol=1e-6)


def test_warmup_and_linear_scaling_give_the_documented_rates():
  """Goyal et al. 2017: base lr 0.1 at batch 256, batch 4096 (k = 16) -> peak 1.6, warm-up over
  5 epochs from 0.1 (= peak / k) -> lr(s) = 1.6 * (1/16 + 15/16 * s / W)."""
  optim = configs.optim_config(
    lr=0.1,
    schedule="cosine",
    warmup_epochs=5.0,
    linear_scaling=True,
    base_batch_size=256,
    warmup_start_factor=1 / 16,
  )
  steps_per_epoch, total = 10, 100
  sched = training.make_lr_schedule(optim, steps_per_epoch, total, batch_size=4096)
  assert training.peak_lr(optim, 4096) == pytest.approx(1.6)
  for s in (0, 10, 25, 49):
    assert float(sched(s)) == pytest.approx(1.6 * (1 / 16 + 15 / 16 * s / 50), rel=1e-6)
  assert float(sched(50)) == pytest.approx(1.6)  # the cosine starts at the peak after W steps
  assert float(sched(75)) == pytest.approx(0.8, rel=1e-6)  # half-way through the cosine
  # Linear scaling off: the configured lr is the peak; warm-up from 0 is the default.
  plain = training.make_lr_schedule(configs.optim_config(lr=0.1, warmup_epochs=5.0), 10, 100)
  assert float(plain(0)) == 0.0 and float(plain(25)) == pytest.approx(0.05)
  assert float(plain(50)) == pytest.approx(0.1)
  with pytest.raises(ValueError, match="batch size"):
    training.make_lr_schedule(optim, steps_per_epoch, total)


def test_corrected_trace_rescales_the_velocity_by_the_rate_ratio():
  """v_{t+1} = m * (eta_{t+1} / eta_t) * v_t + u_t exactly, with the rate read per step."""
  rates = jnp.asarray([0.2, 0.2, 0.8, 0.1])
  tx = training.corrected_trace(lambda count: rates[count], decay=0.9)
  us = [jnp.asarray([1.0, -2.0]), jnp.asarray([0.5, 0.5]), jnp.asarray([3.0, 1.0]), jnp.ones(2)]
  state, v = tx.init(jnp.zeros(2)), jnp.zeros(2)
  prev = None
  for t, u in enumerate(us):
    out, state = tx.update(u, state)
    ratio = 0.0 if prev is None else float(rates[t] / prev)
    v = 0.9 * ratio * v + u
    np.testing.assert_allclose(out, v, rtol=1e-6)
    np.testing.assert_allclose(state.trace, v, rtol=1e-6)
    prev = rates[t]
  assert float(state.prev_lr) == pytest.approx(0.1)


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_correction_makes_lars_equal_the_lr_outside_form(nesterov):
  """With the correction, LARS's velocity form (Eq. 10) follows the gradient-buffer form
  (Eq. 9: u = m u + d, w -= eta u) through a step schedule and a warm-up; without it, it does
  not (optax.lars's own trace)."""
  sched = optax.join_schedules(
    [optax.linear_schedule(0.05, 0.4, 3), optax.piecewise_constant_schedule(0.4, {2: 0.1})], [3]
  )
  fields = dict(momentum=0.9, weight_decay=1e-3, nesterov=nesterov, trust_coefficient=0.01)
  corrected = training.make_optimizer(_lars(momentum_correction=True, **fields), sched)
  plain = training.make_optimizer(_lars(**fields), sched)
  eq9 = optax.chain(
    optax.add_decayed_weights(1e-3, mask=training.lars_mask),
    optax.masked(optax.scale_by_trust_ratio(trust_coefficient=0.01), training.lars_mask),
    optax.trace(0.9, nesterov=nesterov),
    optax.scale_by_learning_rate(sched),
  )
  params = {"kernel": jnp.asarray([[1.0, -0.5], [0.3, 2.0]]), "bias": jnp.asarray([0.1, -0.2])}
  runs = {}
  for name, tx in (("corrected", corrected), ("plain", plain), ("eq9", eq9)):
    p, state = params, tx.init(params)
    for t in range(8):
      g = jax.tree.map(lambda x: jnp.sin(x * (t + 1)) + 0.1 * t, p)  # noqa: B023
      u, state = tx.update(g, state, p)
      p = optax.apply_updates(p, u)
    runs[name] = p
  chex.assert_trees_all_close(runs["corrected"], runs["eq9"], rtol=1e-5, atol=1e-7)
  diff = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), runs["plain"], runs["eq9"])
  assert max(jax.tree.leaves(diff)) > 1e-3


@pytest.mark.parametrize(
  "overrides,match",
  [
    ({"optimizer": "adam"}, "optim.optimizer"),
    ({"momentum_correction": True}, "momentum_correction"),
    ({"optimizer": "lars", "trust_coefficient": 0.0}, "trust_coefficient"),
    ({"linear_scaling": True, "base_batch_size": 0}, "base_batch_size"),
    ({"warmup_start_factor": 1.5}, "warmup_start_factor"),
  ],
)
def test_bad_large_batch_fields_are_refused(tiny_train_config, overrides, match):
  config = tiny_train_config(**{f"optim.{k}": v for k, v in overrides.items()})
  with pytest.raises(ConfigError, match=match):
    configs.validate_training_config(config)


def test_lars_with_momentum_correction_resumes_bit_identically(
  tiny_train_config, tmp_path, monkeypatch
):
  """The corrected velocity and its previous rate live in the checkpointed optimizer state: a
  run killed after its first checkpoint and re-run ends where the uninterrupted run ends."""
  fields = {
    "optim.optimizer": "lars",
    "optim.lr": 2.0,
    "optim.momentum_correction": True,
    "optim.linear_scaling": True,
    "optim.base_batch_size": 32,
    "optim.warmup_epochs": 0.5,
    "optim.warmup_start_factor": 0.5,
  }
  full = main.run_experiment(tiny_train_config(**fields), str(tmp_path / "full"))
  run = lambda: main.run_experiment(tiny_train_config(**fields), str(tmp_path / "resumed"))  # noqa: E731
  run_killed_after_first_save(run, monkeypatch)
  resumed = run()
  assert resumed["test_accuracy"] == full["test_accuracy"]
  for a, b in zip(final_params(tmp_path / "resumed"), final_params(tmp_path / "full"), strict=True):
    np.testing.assert_array_equal(a, b)
