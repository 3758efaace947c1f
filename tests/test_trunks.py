"""The trunk loop (`jaxml.trunks`) with a toy controller on the tiny CIFAR-10 copy: per-copy
hparams reach the copies, actions are applied, the non-finite rule holds, and a run killed inside
a trunk resumes to the same end (the controller asked again from the trunk's start)."""

import jax
import numpy as np
import pytest

from jaxml import experiment, trunks
from jaxml.trunks import Broadcast, Keep, Select, TrunkReport, run_trunks, trunk_schedule

K = 3


class LrController:
  """Copy i trains with lr_scale = scales[i]; tell keeps a running reward sum and applies
  `action(report)`. Its state is a pytree, as the protocol asks."""

  name = "toy"
  augment_fn = loss_fn = aux_init = None

  def __init__(self, scales, action=lambda report: Keep()):
    self.scales = np.asarray(scales, np.float32)
    self.action = action
    self.asked = []

  def init(self, key):
    del key
    return {"reward_sum": np.zeros((K,), np.float32), "tells": np.int32(0)}

  def ask(self, state, key):
    self.asked.append(int(state["tells"]))
    return state, {"optim": {"lr_scale": self.scales}}, {}

  def tell(self, state, report: TrunkReport):
    state = {
      "reward_sum": np.asarray(state["reward_sum"]) + report.rewards.astype(np.float32),
      "tells": np.int32(int(state["tells"]) + 1),
    }
    return state, self.action(report), {"best": report.best()}

  def history(self, state):
    return {"reward_sum": np.asarray(state["reward_sum"])}

  def summary(self, state, history, workdir):
    return {"tells": int(state["tells"]), "history_rows": int(history["reward_sum"].shape[0])}


def _run(config, workdir, controller, trunk=4, every=0):
  config = config.copy_and_resolve_references()
  config.checkpoint_every_steps, config.checkpoint_every_epochs = every, 0.0
  run = experiment.PopulationRun(config, str(workdir), controller)
  return run_trunks(run, controller, trunk).summary


@pytest.fixture(scope="module")
def config(tiny_train_config):
  return tiny_train_config(**{"population.size": K, "population.mapping": "vmap"})


def test_trunk_schedule_covers_every_step():
  assert trunk_schedule(10, 4) == [(0, 4), (4, 8), (8, 10)]
  assert trunk_schedule(8, 4) == [(0, 4), (4, 8)]


def test_report_best_skips_non_finite_copies():
  report = TrunkReport(0, np.array([0.5, 0.0, 0.4]), np.array([True, False, True]), {}, {})
  assert report.best() == 0
  report = TrunkReport(0, np.array([0.0, 0.0, 0.0]), np.array([False, False, True]), {}, {})
  assert report.best() == 2


def test_diverged_copy_gets_zero_reward_and_is_never_broadcast(config, tmp_path):
  """Copy 1's lr is scaled by 1e30: its loss goes non-finite; the others train normally."""
  controller = LrController([1.0, 1e30, 0.5], action=lambda r: Broadcast(r.best()))
  summary = _run(config, tmp_path, controller)
  assert summary["tells"] == summary["trunks"] == 3 == summary["history_rows"]
  for rewards, best in zip(summary["rewards"], summary["best_copy_per_trunk"]):
    assert best != 1
    assert rewards[1] == 0.0  # its val loss is NaN (its val accuracy, argmax of NaNs, is not)
  with np.load(tmp_path / "trunks.npz") as f:
    assert (f["rewards"][:, 1] == 0.0).all()
    assert f["reward_sum"].shape == (3, K)
  # After the last broadcast every copy holds one model: evaluated once.
  assert isinstance(summary["test_accuracy"], float) and "test_accuracy_per_copy" not in summary


def test_every_copy_diverged_stops_the_run_with_a_clear_error(config, tmp_path):
  from jaxml.errors import DivergedError

  with pytest.raises(DivergedError, match="every copy diverged by step 4") as err:
    _run(config, tmp_path, LrController([1e30, 1e30, 1e30]))
  assert err.value.exit_code == 5
  assert sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir()) == []  # no NaN state


def test_plain_population_resets_a_diverged_copy_when_asked(config, tmp_path, monkeypatch):
  """No controller: copy 1's val comes back NaN after trunk 1; `reset_diverged` restarts it."""
  calls, original = [], experiment.Engine.evaluate

  def evaluate(self, pop, split, hparams=None):
    out = original(self, pop, split, hparams)
    calls.append(split)
    if split == "val" and len(calls) == 1:
      out = {**out, "loss": np.asarray(out["loss"]).copy()}
      out["loss"][1] = np.nan
    return out

  monkeypatch.setattr(experiment.Engine, "evaluate", evaluate)
  fresh = {}
  real_apply = trunks._apply

  def spy(run, pop, action, *args):
    fresh.setdefault("actions", []).append(action)
    return real_apply(run, pop, action, *args)

  monkeypatch.setattr(trunks, "_apply", spy)
  reset = config.copy_and_resolve_references()
  reset.population.reset_diverged = True
  _run(reset, tmp_path, None)
  assert fresh["actions"][0] == trunks.Reinit((1,)) and fresh["actions"][1] == Keep()


def test_select_action_is_applied(config, tmp_path):
  captured = {}
  real_apply = trunks._apply

  def spy(run, pop, action, *args):
    pop = real_apply(run, pop, action, *args)
    captured["params"] = jax.device_get(pop.params)
    return pop

  controller = LrController([1.0, 0.5, 0.25], action=lambda r: Select((r.best(),) * K))
  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(trunks, "_apply", spy)
    summary = _run(config, tmp_path, controller, trunk=12)
  leaf = jax.tree.leaves(captured["params"])[0]
  assert all(np.array_equal(leaf[0], leaf[i]) for i in range(K))
  assert summary["trunks"] == 1
  # Select is not a broadcast: the final evaluation reports every copy.
  assert len(summary["test_accuracy_per_copy"]) == K


class Killed(Exception):
  pass


def test_kill_inside_a_trunk_resumes_identically(config, tmp_path):
  """Checkpoints every 2 steps inside trunks of 4; killed after the checkpoint at step 6."""
  full = _run(config, tmp_path / "full", LrController([1.0, 0.5, 0.25]), trunk=4, every=2)
  original = experiment.PopulationRun.save

  def save_then_die(self, step, state, metadata):
    original(self, step, state, metadata)
    if step == 6:
      raise Killed()

  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(experiment.PopulationRun, "save", save_then_die)
    with pytest.raises(Killed):
      _run(config, tmp_path / "killed", LrController([1.0, 0.5, 0.25]), trunk=4, every=2)
  resumed_controller = LrController([1.0, 0.5, 0.25])
  resumed = _run(config, tmp_path / "killed", resumed_controller, trunk=4, every=2)
  # The fresh state is asked once for the model's init inputs (a template, then restored over);
  # the resume asked trunk 1 again from the state of that trunk's start (one tell done).
  assert resumed_controller.asked == [0, 1, 2]
  assert resumed["rewards"] == full["rewards"]
  assert resumed["test_accuracy_per_copy"] == full["test_accuracy_per_copy"]
  with (
    np.load(tmp_path / "full" / "trunks.npz") as a,
    np.load(tmp_path / "killed" / "trunks.npz") as b,
  ):
    np.testing.assert_array_equal(a["reward_sum"], b["reward_sum"])


def _val_with_halves(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  halves = np.stack([a, b], axis=1)
  return {"accuracy": halves.mean(1), "loss": 1 - halves.mean(1), "accuracy_halves": halves,
          "loss_halves": 1 - halves}  # fmt: skip


def test_reward_signal_noise_by_hand():
  a, b = [0.49, 0.53, 0.55, np.nan], [0.51, 0.51, 0.53, np.nan]
  finite = np.array([True, True, True, False])
  out = trunks.reward_signal_noise(_val_with_halves(a, b), finite)
  # cov over copies (ddof 1) of the halves: the copies' quality spread both halves agree on.
  assert out["acc_signal"] == pytest.approx(np.sqrt(np.cov(a[:3], b[:3])[0, 1]))
  assert out["acc_signal"] == pytest.approx(np.sqrt(0.0008 / 3))  # 0.0163
  # (A - B) = -0.02, 0.02, 0.02: var (ddof 1) 0.0016 / 3, a quarter of it for the full split.
  assert out["acc_noise"] == pytest.approx(np.sqrt(0.0016 / 3 / 4))
  assert out["acc_snr"] == pytest.approx(out["acc_signal"] / out["acc_noise"])
  assert out["acc_spread"] == pytest.approx(np.std([0.50, 0.52, 0.54], ddof=1))
  # The loss halves are 1 - accuracy here: the same spread, signal and noise.
  assert out["loss_snr"] == pytest.approx(out["acc_snr"])
  # Fewer than three finite copies: not measured.
  two = np.array([True, True, False, False])
  assert trunks.reward_signal_noise(_val_with_halves(a, b), two) == {}
  # Halves that disagree on the ordering (negative cov): no signal, not a negative one.
  anti = trunks.reward_signal_noise(_val_with_halves([0.5, 0.6, 0.7], [0.7, 0.6, 0.5]), finite[:3])
  assert anti["acc_signal"] == 0.0 and anti["acc_snr"] == 0.0
  # Identical halves: no noise, so no ratio.
  same = trunks.reward_signal_noise(_val_with_halves(a[:3], a[:3]), finite[:3])
  assert "acc_snr" not in same and same["acc_noise"] == 0.0


def test_reward_signal_noise_drops_what_every_copy_shares():
  """Copies of known quality spread 0.02 scored on val halves whose draw shifts every copy alike
  by ~0.05 (a hard or an easy half) plus independent binomial-sized errors: the split-half
  estimates recover the quality spread and the per-copy noise, not the shared shift."""
  rng = np.random.default_rng(0)
  k, n_val = 400, 2000
  q = 0.5 + 0.02 * rng.standard_normal(k)
  half_se = np.sqrt(0.25 / (n_val / 2))  # one half's binomial standard error, 0.0158
  a = q + 0.05 + half_se * rng.standard_normal(k)
  b = q - 0.05 + half_se * rng.standard_normal(k)
  out = trunks.reward_signal_noise(_val_with_halves(a, b), np.ones(k, bool))
  assert out["acc_signal"] == pytest.approx(0.02, rel=0.15)
  assert out["acc_noise"] == pytest.approx(half_se / np.sqrt(2), rel=0.1)  # the full split's SE
