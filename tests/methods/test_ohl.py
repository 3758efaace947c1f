"""OHL-Auto-Aug end to end on a tiny CIFAR-10 copy: outputs, theta learning, ablation, resume."""

import json
import signal

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from train_fixtures import (
  REPO_ROOT,
  final_params,
  run_killed_after_first_save,
  run_stopped_by_signal,
  tiny_method_config,
)

from jaxml import config_cli, main
from jaxml.augment import ohl_space
from jaxml.errors import ConfigError
from jaxml.methods import ohl

OHL_CONFIG = REPO_ROOT / "experiments" / "ohl" / "cifar10_resnet18.py"


@pytest.fixture(scope="module")
def ohl_config(tiny_cifar_dir, tmp_path_factory):
  cache = tmp_path_factory.mktemp("ohl_cache")

  def make(arg="smoke", **overrides):
    overrides = {"ohl.trunk_steps": 4, "ohl.policy_lr": 0.2, **overrides}
    return tiny_method_config(f"{OHL_CONFIG}:{arg}", tiny_cifar_dir, cache, **overrides)

  return make


@pytest.fixture(scope="module")
def full_run(ohl_config, tmp_path_factory):
  workdir = tmp_path_factory.mktemp("ohl_full")
  summary = main.run_experiment(ohl_config(), str(workdir))
  return workdir, summary


@pytest.mark.slow  # end to end
def test_outputs_and_theta_moves(full_run):
  workdir, summary = full_run
  for name in (
    "config.json",
    "metrics.jsonl",
    "summary.json",
    "trunks.npz",
    "top_pairs.json",
    "plots/theta.png",
    "plots/curves.png",
  ):
    assert (workdir / name).exists(), name
  assert json.loads((workdir / "summary.json").read_text())["method"] == "ohl"
  assert summary["trunks"] == 3 and len(summary["rewards"]) == 3
  assert all(len(r) == 2 for r in summary["rewards"])
  assert 0.0 <= summary["test_accuracy"] <= 1.0
  # The final model is the best copy of the last trunk, broadcast to all and evaluated alone.
  assert summary["val_accuracy"] == pytest.approx(summary["best_val_per_trunk"][-1], abs=1e-6)
  # Per trunk, the reward's split-half signal / noise (None: K = 2 is too few copies to tell).
  for snr in (summary["acc_snr"], summary["loss_snr"]):
    assert len(snr) == len(summary["rewards"]) and all(v is None or v >= 0 for v in snr)
  with np.load(workdir / "trunks.npz") as f:
    theta = f["theta"]
    assert theta.shape == (3, ohl_space.NUM_PAIRS)
    np.testing.assert_array_equal(f["rewards"], summary["rewards"])
    np.testing.assert_array_equal(f["best_copy"], summary["best_copy_per_trunk"])
  assert summary["theta_kl_from_uniform"] > 1e-4  # REINFORCE moved theta
  assert not np.allclose(theta[0], theta[-1])
  probs = [p["prob"] for p in summary["top_pairs"]]
  assert len(probs) == 10 and probs == sorted(probs, reverse=True)
  np.testing.assert_allclose(probs[0], float(jax.nn.softmax(theta[-1]).max()), rtol=1e-5)


def test_augment_fn_counts_and_shapes():
  images = jnp.asarray(np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3)), jnp.uint8)
  logits = jnp.zeros((1, ohl_space.NUM_PAIRS))
  aux = {"counts": ohl.POLICY.zero_stats()}
  augment = jax.jit(ohl.augment_fn)  # eager, the 36-way op switch costs ~5x its compile
  out, aux = augment(jax.random.key(0), images, {}, {"logits": logits}, aux)
  assert aux["counts"].shape == ohl.POLICY.zero_stats().shape
  chex.assert_shape(out, images.shape)
  assert out.dtype == jnp.uint8
  assert float(aux["counts"].sum()) == 6.0
  # A policy with all mass on one pair samples only that pair.
  peaked = logits.at[0, 37].set(100.0)
  _, aux2 = augment(
    jax.random.key(1), images, {}, {"logits": peaked}, {"counts": ohl.POLICY.zero_stats()}
  )
  assert float(aux2["counts"][0, 37]) == 6.0


def test_factorised_policy_draws_pairs_of_independent_operations():
  policy = ohl.POLICIES["factorised"]
  pairs = jnp.arange(ohl_space.NUM_PAIRS)
  np.testing.assert_array_equal(
    ohl.pairs_from_draws(policy, ohl.draws_from_pairs(policy, pairs)), pairs
  )
  np.testing.assert_array_equal(ohl.draws_from_pairs(policy, jnp.array([37])), [[1, 1]])
  logits = jnp.zeros((2, ohl_space.NUM_ELEMENTS)).at[0, 2].set(100.0).at[1, 5].set(100.0)
  logp = ohl.pair_log_probs(policy, logits)
  assert logp.shape == (ohl_space.NUM_PAIRS,) and np.exp(logp).sum() == pytest.approx(1.0)
  assert int(np.argmax(logp)) == 2 * ohl_space.NUM_ELEMENTS + 5
  images = jnp.asarray(np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3)), jnp.uint8)
  augment = jax.jit(ohl.make_augment_fn(policy))
  aux = {"counts": policy.zero_stats()}
  _, aux = augment(jax.random.key(1), images, {}, {"logits": logits}, aux)
  # Each image drew operation 2 first and 5 second: one count per factor.
  assert float(aux["counts"][0, 2]) == float(aux["counts"][1, 5]) == 6.0
  # A copy's own pairs (pairs_per_copy) are counted per factor too.
  own = {"pairs": jnp.array([37, 37])}
  fresh = {"counts": policy.zero_stats()}
  _, aux = augment(jax.random.key(2), images, own, {"logits": logits}, fresh)
  assert float(aux["counts"][0, 1]) == float(aux["counts"][1, 1]) == 6.0


@pytest.mark.slow  # end to end
def test_frozen_theta_ablation_keeps_uniform(ohl_config, tmp_path):
  summary = main.run_experiment(ohl_config("smoke,frozen", num_steps=8), str(tmp_path))
  assert summary["learn_theta"] is False
  assert summary["theta_kl_from_uniform"] < 1e-5  # zero up to float32 rounding of log(1296)
  with np.load(tmp_path / "trunks.npz") as f:  # log p_theta of every pair stays uniform
    np.testing.assert_allclose(f["theta"], -np.log(ohl_space.NUM_PAIRS), rtol=1e-6)


def test_baseline_variant_is_plain_training(ohl_config):
  c = config_cli.load_config_file(f"{OHL_CONFIG}:smoke,baseline")
  assert c.method == "train" and c.population.size == 1 and "ohl" not in c
  full = config_cli.load_config_file(f"{OHL_CONFIG}:baseline")
  ref = config_cli.load_config_file(str(REPO_ROOT / "experiments/baselines/cifar10_resnet18.py"))
  assert full.optim == ref.optim and full.num_epochs == ref.num_epochs  # the same schedule
  with pytest.raises(ConfigError, match="exclude"):
    config_cli.load_config_file(f"{OHL_CONFIG}:baseline,frozen")
  with pytest.raises(ConfigError, match="valid: smoke, baseline, frozen"):
    config_cli.load_config_file(f"{OHL_CONFIG}:smok")


def test_needs_two_copies_and_val(ohl_config):
  with pytest.raises(ConfigError, match="population.size >= 2"):
    ohl.validate_config(ohl_config(**{"population.size": 1}))
  with pytest.raises(ConfigError, match="val_size"):
    ohl.validate_config(ohl_config(**{"data.val_size": 0}))


@pytest.mark.parametrize(
  "overrides, match",
  [
    ({"ohl.pairs_per_copy": -1}, r"pairs_per_copy must be in \[0, 1296\]"),
    ({"ohl.pairs_per_copy": 5000}, r"pairs_per_copy must be in \[0, 1296\].*got 5000"),
    ({"ohl.policy_b1": -0.5}, r"ohl.policy_b1 must be in \[0, 1\), got -0.5"),
    ({"ohl.policy": "pairs"}, "ohl.policy='pairs'; valid: joint, factorised"),
    ({"ohl.reward": "loss"}, "ohl.reward='loss'; valid: accuracy, neg_loss"),
  ],
)
def test_bad_policy_fields_are_refused(ohl_config, overrides, match):
  with pytest.raises(ConfigError, match=match):
    ohl.validate_config(ohl_config(**overrides))


def test_a_trunk_as_long_as_the_run_is_refused_before_anything_is_written(ohl_config, tmp_path):
  """One trunk spanning the run: theta would be updated once, after all training."""
  config = ohl_config(**{"num_steps": 12, "ohl.trunk_steps": 7})
  workdir = tmp_path / "run"
  with pytest.raises(ConfigError, match="trunks of 7 steps .* at most 6 steps"):
    main.run_experiment(config, str(workdir))
  assert not workdir.exists()


@pytest.mark.slow  # end to end
def test_kill_and_resume_equals_uninterrupted(full_run, ohl_config, tmp_path, monkeypatch):
  workdir_full, summary_full = full_run
  run_killed_after_first_save(lambda: main.run_experiment(ohl_config(), str(tmp_path)), monkeypatch)
  with np.load(tmp_path / "trunks.npz") as f:
    assert f["theta"].shape[0] == 1
  summary = main.run_experiment(ohl_config(), str(tmp_path))

  with np.load(tmp_path / "trunks.npz") as a, np.load(workdir_full / "trunks.npz") as b:
    for key in ("theta", "rewards", "best_copy"):
      np.testing.assert_array_equal(a[key], b[key])
  assert summary["rewards"] == summary_full["rewards"]
  assert summary["test_accuracy"] == summary_full["test_accuracy"]
  for a, b in zip(final_params(tmp_path), final_params(workdir_full)):
    np.testing.assert_array_equal(a, b)


def test_pairs_per_copy_variant_uses_only_each_copys_pairs(ohl_config):
  images = jnp.asarray(np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3)), jnp.uint8)
  aux = {"counts": ohl.POLICY.zero_stats()}
  own = {"pairs": jnp.asarray([5, 900], jnp.int32)}
  _, aux = jax.jit(ohl.augment_fn)(jax.random.key(0), images, own, {"logits": None}, aux)
  counts = np.asarray(aux["counts"][0])
  assert counts.sum() == 16 and set(np.flatnonzero(counts)) <= {5, 900}

  # ask hands each copy its pairs as per-copy hparams (which reach the step through the engine's
  # per-copy map, as AM-LFS's losses do: tests/methods/test_amlfs.py).
  controller = ohl.OHLController(ohl_config(**{"ohl.pairs_per_copy": 2}).ohl, 3)
  state = controller.init(None)
  _, hparams, _ = controller.ask(state, jax.random.key(1))
  assert hparams["pairs"].shape == (3, 2) and hparams["pairs"].max() < ohl_space.NUM_PAIRS
  assert len(np.unique(hparams["pairs"])) > 1
  peaked = state.replace(params=state.params.at[0, 37].set(100.0))
  np.testing.assert_array_equal(controller.ask(peaked, jax.random.key(2))[1]["pairs"], 37)
  with pytest.raises(ConfigError, match="pairs_per_copy"):
    ohl.validate_config(ohl_config(**{"ohl.pairs_per_copy": -1}))


@pytest.mark.slow  # end to end
def test_sigterm_saves_and_the_rerun_finishes_identically(
  full_run, ohl_config, tmp_path, monkeypatch
):
  workdir_full, summary_full = full_run
  run = lambda: main.run_experiment(ohl_config(), str(tmp_path))  # noqa: E731
  err = run_stopped_by_signal(run, monkeypatch, 6, signal.SIGTERM)  # inside the second trunk
  assert err.exit_code == 143 and "SIGTERM at step 6" in str(err)
  summary = run()
  with np.load(tmp_path / "trunks.npz") as a, np.load(workdir_full / "trunks.npz") as b:
    for key in ("theta", "rewards", "best_copy"):
      np.testing.assert_array_equal(a[key], b[key])
  assert summary["test_accuracy"] == summary_full["test_accuracy"]
  for a, b in zip(final_params(tmp_path), final_params(workdir_full)):
    np.testing.assert_array_equal(a, b)
