"""AM-LFS end to end on a tiny CIFAR-10 copy: per-copy losses, outputs, mu learning, resume."""

import json
import signal

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from population_fixtures import make_engine
from train_fixtures import (
  REPO_ROOT,
  final_params,
  run_killed_after_first_save,
  run_stopped_by_signal,
  tiny_method_config,
)

from jaxml import config_cli, main
from jaxml.errors import ConfigError
from jaxml.methods import amlfs
from jaxml.population import Population
from jaxml.trunks import Broadcast, TrunkReport

AMLFS_CONFIG = REPO_ROOT / "experiments" / "amlfs" / "cifar10_noise20.py"


@pytest.fixture(scope="module")
def amlfs_config(tiny_cifar_dir, tmp_path_factory):
  cache = tmp_path_factory.mktemp("amlfs_cache")

  def make(arg="smoke", **overrides):
    if "baseline" not in arg:
      amlfs_fields = {"amlfs.trunk_steps": 4, "amlfs.policy_lr": 0.2, "amlfs.sigma": 0.5}
      overrides = {"population.size": 3, **amlfs_fields, **overrides}
    return tiny_method_config(f"{AMLFS_CONFIG}:{arg}", tiny_cifar_dir, cache, **overrides)

  return make


@pytest.fixture(scope="module")
def full_run(amlfs_config, tmp_path_factory):
  workdir = tmp_path_factory.mktemp("amlfs_full")
  return workdir, main.run_experiment(amlfs_config(), str(workdir))


def test_each_copy_trains_with_its_own_loss():
  """Copies 0 and 1 draw the identity (= cross-entropy), copy 2 another loss: after one step
  from the same weights on the same batch, 0 and 1 equal plain cross-entropy training, 2 not."""
  controller = amlfs.AMLFSController(amlfs.amlfs_config(), 3)
  pop = Population(3, mapping="vmap")
  engine = make_engine(pop, model="mlp", random_augment=False, loss_fn=controller.loss_fn)
  plain = make_engine(pop, model="mlp", random_augment=False)
  theta = np.zeros((3, controller.policy.dim), np.float32)
  theta[2] = [0.5, -1.0, 0.0, 0.5, 1.0, 0.2]
  hparams = pop.put_copies({"loss": theta})
  # The step donates its input state: each engine steps its own (identical) fresh population.
  after, _ = engine.step(engine.init_population(same_init=True, hparams=hparams), hparams, {}, 0)
  ref, _ = plain.step(plain.init_population(same_init=True, hparams=hparams), hparams, {}, 0)
  for a, r in zip(jax.tree.leaves(after.params), jax.tree.leaves(ref.params)):
    a, r = np.asarray(a), np.asarray(r)
    np.testing.assert_allclose(a[:2], r[:2], atol=1e-6)
    assert not np.allclose(a[2], r[2], atol=1e-6)


@pytest.mark.slow  # end to end
def test_outputs_and_mu_moves(full_run):
  workdir, summary = full_run
  for name in ("config.json", "summary.json", "trunks.npz", "plots/loss_functions.png"):
    assert (workdir / name).exists(), name
  assert json.loads((workdir / "summary.json").read_text())["method"] == "amlfs"
  assert summary["trunks"] == 3 and all(len(r) == 3 for r in summary["rewards"])
  assert summary["val_accuracy"] == pytest.approx(summary["best_val_per_trunk"][-1], abs=1e-6)
  with np.load(workdir / "trunks.npz") as f:
    mu, sigma, theta = f["mu"], f["sigma"], f["theta"]
  assert mu.shape == (3, 6) and theta.shape == (3, 3, 6)
  np.testing.assert_allclose(sigma, 0.5, rtol=1e-6)  # fixed, as in the paper
  assert np.abs(mu).max() > 1e-3  # REINFORCE moved mu away from cross-entropy
  assert len(set(map(tuple, theta[0].round(6)))) == 3  # each copy drew its own loss
  np.testing.assert_allclose(summary["mu"], mu[-1], rtol=1e-6)
  tau = summary["tau_at_knots"]
  assert tau[-1] == pytest.approx(1.0, abs=1e-5) and np.all(np.diff(tau) > 0)


@pytest.mark.parametrize("init_mu", [(), (0.9, 0.0, 0.0, 0.0, 0.0, -0.1)])
def test_frozen_keeps_mu_and_still_broadcasts_the_best(amlfs_config, init_mu):
  config = amlfs_config("smoke,frozen", **{"amlfs.init_mu": init_mu})
  amlfs.validate_config(config)
  controller = amlfs.AMLFSController(config.amlfs, 3)
  state, hparams, _ = controller.ask(controller.init(None), jax.random.key(0))
  assert hparams["loss"].shape == (3, 6) and np.abs(hparams["loss"]).max() > 0
  report = TrunkReport(0, np.array([0.1, 0.3, 0.2]), np.ones(3, bool), {}, None)
  new, action, _ = controller.tell(state, report)
  assert action == Broadcast(1)
  expected = np.asarray(init_mu or np.zeros(6), np.float32)  # () is 0: cross-entropy
  np.testing.assert_array_equal(np.asarray(new["policy"].params["mean"]), expected)


def test_baseline_variant_is_cross_entropy_on_the_same_noisy_labels():
  base = config_cli.load_config_file(f"{AMLFS_CONFIG}:smoke,baseline")
  smoke = config_cli.load_config_file(f"{AMLFS_CONFIG}:smoke")
  assert base.method == "train" and "amlfs" not in base and base.population.size == 1
  assert base.data.label_noise == smoke.data.label_noise == 0.2  # same noisy labels
  assert base.optim == smoke.optim and base.num_steps == smoke.num_steps  # same schedule
  full = config_cli.load_config_file(f"{AMLFS_CONFIG}:baseline")
  ref = config_cli.load_config_file(str(REPO_ROOT / "experiments/baselines/cifar10_resnet20.py"))
  assert full.optim == ref.optim and full.num_steps == ref.num_steps
  with pytest.raises(ConfigError, match="exclude"):
    config_cli.load_config_file(f"{AMLFS_CONFIG}:baseline,frozen")


@pytest.mark.parametrize(
  "overrides, match",
  [
    ({"population.size": 1}, "population.size >= 2"),
    ({"data.val_size": 0}, "val_size"),
    ({"amlfs.sigma": 0.0}, "sigma"),
    ({"amlfs.intervals": 0}, "intervals"),
    ({"amlfs.intervals": 10**6}, r"amlfs.intervals must be in \[1, 100\], got 1000000"),
    ({"amlfs.policy_b1": 1.0}, r"amlfs.policy_b1 must be in \[0, 1\), got 1.0"),
    ({"amlfs.reward": "loss"}, "reward"),
    (
      {"amlfs.init_mu": (0.5, 0.0)},
      r"amlfs.init_mu needs 6 values \(intervals \+ 1\) or none, got 2",
    ),
    ({"optim.label_smoothing": 0.1}, "label_smoothing"),
  ],
)
def test_bad_config_is_refused(amlfs_config, overrides, match):
  with pytest.raises(ConfigError, match=match):
    amlfs.validate_config(amlfs_config(**overrides))


def test_a_trunk_longer_than_the_run_is_refused(amlfs_config, tmp_path):
  config = amlfs_config(**{"num_steps": 12, "amlfs.trunk_epochs": 1000.0, "amlfs.trunk_steps": 0})
  with pytest.raises(ConfigError, match="amlfs trunks of .* steps"):
    main.run_experiment(config, str(tmp_path / "run"))
  assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("copies", [4, 5])
def test_antithetic_copies_mirror_each_other_about_mu(copies):
  controller = amlfs.AMLFSController(amlfs.amlfs_config(antithetic=True), copies)
  state = controller.init(jax.random.key(0))
  mu = jnp.full((controller.policy.dim,), 0.3)
  state["policy"] = state["policy"].replace(params={**state["policy"].params, "mean": mu})
  _, hparams, _ = controller.ask(state, jax.random.key(1))
  theta = np.asarray(hparams["loss"])
  assert theta.shape == (copies, controller.policy.dim)
  for i in range(0, copies - 1, 2):  # pair by pair: mu + sigma eps and mu - sigma eps
    np.testing.assert_allclose(theta[i] + theta[i + 1], 2 * np.asarray(mu), atol=1e-6)
    assert not np.allclose(theta[i], theta[i + 1])


def test_neg_loss_reward_ranks_nonfinite_copies_last():
  report = TrunkReport(
    0,
    rewards=np.array([0.5, 0.0, 0.4]),
    finite=np.array([True, False, True]),
    val={"accuracy": np.array([0.5, np.nan, 0.4]), "loss": np.array([1.0, np.nan, 2.0])},
    aux=None,
  )
  np.testing.assert_array_equal(report.rewards_as("accuracy"), [0.5, 0.0, 0.4])
  np.testing.assert_array_equal(report.rewards_as("neg_loss"), [-1.0, -2.0, -2.0])


@pytest.mark.slow  # end to end
@pytest.mark.parametrize("interrupt", ["kill", "sigterm"])
def test_interrupted_run_resumes_to_the_uninterrupted_end(
  full_run, amlfs_config, tmp_path, monkeypatch, interrupt
):
  """Killed right after the first checkpoint, or stopped by SIGTERM inside the second trunk."""
  workdir_full, summary_full = full_run
  run = lambda: main.run_experiment(amlfs_config(), str(tmp_path))  # noqa: E731
  if interrupt == "kill":
    run_killed_after_first_save(run, monkeypatch)
  else:
    assert run_stopped_by_signal(run, monkeypatch, 6, signal.SIGTERM).exit_code == 143
  summary = run()
  with np.load(tmp_path / "trunks.npz") as a, np.load(workdir_full / "trunks.npz") as b:
    for key in ("mu", "theta", "rewards", "best_copy"):
      np.testing.assert_array_equal(a[key], b[key])
  assert summary["test_accuracy"] == summary_full["test_accuracy"]
  for a, b in zip(final_params(tmp_path), final_params(workdir_full)):
    np.testing.assert_array_equal(a, b)
