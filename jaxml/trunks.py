"""The trunk loop every population method runs, and the controller protocol it drives.

DESIGN.md: a method is "a population of copies trained in lockstep, each with its own
hyper-parameters, plus a controller that looks at the copies between trunks and changes them".
`run_trunks` owns everything that is not the method:

    restore -> for each trunk t:
                 hparams, shared <- controller.ask(state, key_t)     (what copies use next)
                 train T steps (checkpoints inside the trunk when asked)
                 evaluate every copy on val in one call -> rewards (non-finite rule below)
                 state, action <- controller.tell(state, report)    (Keep / Broadcast / Select
                                                                     / Reinit the copies)
                 metrics row, trunks.npz row, checkpoint {population, controller}
            -> final evaluation, common summary fields + controller.summary(state)

A controller subclasses `Controller` and overrides only what it changes (the base class's
members do nothing); its state is a pytree, checkpointed with the population, so a killed run
resumes at its last checkpoint and finishes bit-identically. `controller=None` is plain training
(K seeds or K = 1): trunks then only evaluate and checkpoint. `run_trunks` returns a `RunResult`:
the summary, the final population and the controller's final state, so a method that goes on
after training (scoring paths on a supernet, a search over it) reads them from there.

Non-finite rule: a copy whose val accuracy or loss is NaN/inf gets reward 0 and is never the
best copy (`TrunkReport.best`), so one diverged copy cannot steer a controller or spread; the
trunk's log names it. Plain populations keep it (flagged) or, with `population.reset_diverged`,
restart it from fresh weights. When every copy has diverged the run stops (`DivergedError`,
exit 5) instead of training on NaNs.

A checkpoint inside a trunk stores the controller state of the trunk's start, so on resume the
loop asks again with the same key and gets the same hparams (ask must be a pure function).
"""

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from jaxml import configs, preemption
from jaxml.errors import ConfigError, DivergedError
from jaxml.experiment import PopulationRun, Timer, progress_bar, say, train_steps
from jaxml.metrics.writers import write_npz_atomic
from jaxml.population import CopyState


@dataclasses.dataclass(frozen=True)
class Keep:
  """Leave the copies as they are."""


@dataclasses.dataclass(frozen=True)
class Broadcast:
  """Copy `index`'s state to every copy (OHL / AM-LFS: distribute the best model)."""

  index: int


@dataclasses.dataclass(frozen=True)
class Select:
  """New copy j = old copy indices[j] (evolution: keep the fit, drop the rest)."""

  indices: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Reinit:
  """Copies `indices` start again from fresh weights (a new architecture trained from scratch).

  Fresh copies get new initial weights (drawn for the trunk that follows), a fresh optimizer
  state and step counter, so their learning-rate schedule restarts.
  """

  indices: tuple[int, ...]


Action = Keep | Broadcast | Select | Reinit


REWARDS = ("accuracy", "neg_loss")  # `TrunkReport.rewards_as`


@dataclasses.dataclass(frozen=True)
class TrunkReport:
  """What a controller is told at a trunk end (host numpy arrays, leading copy axis K).

  Attributes:
    trunk: index of the trunk that just ended.
    rewards: float64 [K] val accuracy; 0 for non-finite copies.
    finite: bool [K] which copies' val accuracy and loss are finite.
    val: the raw per-copy val metrics ('accuracy', 'loss').
    aux: the copies' per-trunk accumulators (`CopyState.aux`, e.g. OHL's pair counts).
    pop: the trained population as it is at the trunk end (device arrays, before the action):
      a controller that scores with the copies' weights (PC-NAS's potentials on the supernet)
      reads them here.
    hparams: the per-copy hparams this trunk trained with (host arrays, as `ask` returned).
  """

  trunk: int
  rewards: np.ndarray
  finite: np.ndarray
  val: dict
  aux: Any
  pop: CopyState | None = None
  hparams: dict = dataclasses.field(default_factory=dict)

  def best(self) -> int:
    """The copy with the highest reward among the finite ones."""
    return int(np.argmax(np.where(self.finite, self.rewards, -np.inf)))

  def rewards_as(self, kind: str) -> np.ndarray:
    """Per-copy rewards of a policy update: 'accuracy' (`rewards`, 0 if non-finite) or
    'neg_loss', -val cross-entropy: a continuous score, so copies that classify the same number
    of val images still differ (non-finite copies get the worst finite reward, so they never
    pull a policy towards themselves)."""
    if kind not in REWARDS:
      raise ConfigError(f"reward {kind!r}; valid: {', '.join(REWARDS)}")
    if kind == "accuracy":
      return self.rewards
    neg = -np.asarray(self.val["loss"], np.float64)
    worst = neg[self.finite].min() if self.finite.any() else 0.0
    return np.where(self.finite, neg, worst)


class Controller:
  """What the trunk loop calls between trunks; subclass it and override what the method changes.

  The defaults do nothing: no engine hooks, a one-counter state (a checkpoint needs at least one
  array), no per-copy hparams, `Keep()` at every trunk end, no history rows and no summary
  fields. `augment_fn`, `loss_fn`, `aux_init`
  are the engine hooks (`training.make_train_step`); `name` prefixes the controller's metric keys.
  """

  name: str = "controller"
  augment_fn: Any = None
  loss_fn: Any = None
  aux_init: Any = None

  def init(self, key: jax.Array) -> Any:
    """The initial controller state (a pytree of arrays)."""
    del key
    return {"trunks": np.int32(0)}

  def ask(self, state, key: jax.Array) -> tuple[Any, dict, dict]:
    """(state, per-copy hparams [K, ...] as host arrays, shared values) for the next trunk; must
    be a pure function of (state, key): a resume inside a trunk asks again."""
    del key
    return state, {}, {}

  def tell(self, state, report: TrunkReport) -> tuple[Any, Action, dict]:
    """(state, what to do with the copies, info: scalars for the metrics row); `state` is the
    one `ask` returned for this trunk."""
    del report
    return state, Keep(), {}

  def history(self, state) -> dict[str, np.ndarray]:
    """Arrays to record after each trunk (rows of trunks.npz, e.g. OHL's theta)."""
    del state
    return {}

  def summary(self, state, history: dict[str, np.ndarray], workdir) -> dict:
    """The controller's summary fields (and its plots, written under `workdir`)."""
    del state, history, workdir
    return {}


@dataclasses.dataclass(frozen=True)
class RunResult:
  """What `run_trunks` returns.

  Attributes:
    summary: the run's summary (also written to summary.json).
    pop: the final population (device arrays), after the last trunk's action.
    controller_state: the controller's final state (None without a controller).
    hparams: the per-copy hparams of the last trunk (host arrays).
  """

  summary: dict
  pop: CopyState
  controller_state: Any
  hparams: dict


def controller_key(seed: int) -> jax.Array:
  """The key every controller draws from: `init` gets fold_in(key, 0), trunk t's `ask`
  fold_in(key, t + 1)."""
  return jax.random.fold_in(jax.random.key(seed), 3)


def trunk_schedule(total: int, trunk: int) -> list[tuple[int, int]]:
  """[(start, end)) of each trunk of `trunk` steps over `total` steps (the last may be short)."""
  return [(s, min(s + trunk, total)) for s in range(0, total, trunk)]


def _save_history(path, rows: dict[str, list]) -> None:
  write_npz_atomic(path, {k: np.stack(v) for k, v in rows.items() if v})


def _load_history(path, num_trunks: int) -> dict[str, list]:
  """The first `num_trunks` rows of trunks.npz (rows past the restored checkpoint are dropped)."""
  if num_trunks == 0 or not path.exists():
    return {}
  with np.load(path) as f:
    return {k: list(f[k][:num_trunks]) for k in f.files}


def _apply(run: PopulationRun, pop, action: Action, trunk: int, same_init: bool, hparams):
  if isinstance(action, Broadcast):
    return run.pop.broadcast(pop, action.index)
  if isinstance(action, Select):
    return run.pop.select(pop, action.indices)
  if isinstance(action, Reinit):
    fresh = run.engine.init_population(same_init, hparams, seed_offset=trunk + 1)
    if sorted(action.indices) == list(range(run.pop.size)):
      return fresh  # no per-leaf scatter to compile (seconds for a space's array build)
    return run.pop.reset(pop, list(action.indices), fresh)
  if isinstance(action, Keep):
    return pop
  raise TypeError(f"a controller's tell returned {action!r}, not one of {Action}")


def _val_row(val: dict, finite: np.ndarray) -> dict:
  acc, loss = np.asarray(val["accuracy"], np.float64), np.asarray(val["loss"], np.float64)
  ok = finite if finite.any() else np.ones_like(finite)
  row = {"val_accuracy": float(acc[ok].mean()), "val_loss": float(loss[ok].mean())}
  if acc.shape[0] > 1:
    row.update(val_accuracy_best=float(np.max(np.where(finite, acc, -np.inf))))
    row.update(val_accuracy_per_copy=acc.tolist())
  return row


def reward_signal_noise(val: dict, finite: np.ndarray) -> dict:
  """How much of the copies' reward spread a controller can learn from, per reward kind ('acc':
  val accuracy, 'loss': val cross-entropy), by split-half reliability.

  Each copy is scored on two disjoint halves of the val split, A_n = q_n + a_n and B_n = q_n + b_n
  (q_n its quality, a_n, b_n independent sampling errors). Over the copies, cov(A, B) = var(q):
  the signal; var(A - B) / 4 = the sampling variance of a copy's full-split score: the noise.
  Both are taken over the copies after their mean is removed, so the part of the val sample that
  every copy shares (an easy or a hard split) drops out, unlike a binomial standard error of one
  accuracy (which counts it as noise). Keys per kind: `{kind}_spread` (std over copies, ddof 1,
  of the full-split score), `{kind}_signal`, `{kind}_noise`, `{kind}_snr` = signal / noise: near
  0 the reward ranks copies by chance, at 1 a copy one signal std better wins a pairwise
  comparison ~76 % of the time. Needs 3+ finite copies (2 give one degree of freedom)."""
  out = {}
  finite = np.asarray(finite, bool)
  if finite.sum() < 3:
    return out
  for kind, key in (("acc", "accuracy"), ("loss", "loss")):
    if f"{key}_halves" not in val:
      continue
    full = np.asarray(val[key], np.float64)[finite]
    a, b = np.asarray(val[f"{key}_halves"], np.float64)[finite].T
    signal_var = float(np.cov(a, b, ddof=1)[0, 1])
    noise = float(np.sqrt(np.var(a - b, ddof=1) / 4))
    signal = float(np.sqrt(max(signal_var, 0.0)))
    out.update({f"{kind}_spread": float(full.std(ddof=1)), f"{kind}_signal": signal})
    out[f"{kind}_noise"] = noise
    if noise > 0:
      out[f"{kind}_snr"] = signal / noise
  return out


def _final_eval(run: PopulationRun, pop, hparams, identical: bool) -> dict:
  """Val/test accuracy of the final model (copy 0 once all copies agree) or of every copy."""
  out = {}
  for split in ("val", "test"):
    if split not in run.engine.eval_sets:
      out[f"{split}_accuracy"] = None
    elif identical:
      out[f"{split}_accuracy"] = run.engine.evaluate_copy(pop, 0, split, hparams)["accuracy"]
    else:
      acc = np.asarray(run.engine.evaluate(pop, split, hparams)["accuracy"], np.float64)
      out[f"{split}_accuracy"] = float(acc.mean())
      out[f"{split}_accuracy_std"] = float(acc.std())
      out[f"{split}_accuracy_per_copy"] = acc.tolist()
  return out


def run_trunks(
  run: PopulationRun,
  controller: Controller | None,
  trunk_steps: int,
  warm_start: Callable[[CopyState], CopyState] | None = None,
) -> RunResult:
  """Trains `run`'s population in trunks of `trunk_steps` under `controller`.

  Every trunk end is a checkpoint; `checkpoint_every_steps` / `_epochs` of the config add
  checkpoints inside trunks. With `population.same_init` all copies start from the same weights
  (OHL); `warm_start(pop) -> pop` replaces the fresh copies' weights (few-shot NAS: another run's
  supernet), used only when the run has no checkpoint of its own. Returns the summary (written to
  summary.json), the final population and controller state.
  """
  engine, config = run.engine, run.config
  checkpoint_every = configs.steps("checkpoint_every", config, engine.steps_per_epoch, default=0)
  same_init = bool(config.population.get("same_init", False))
  if controller is not None and "val" not in engine.eval_sets:
    raise ConfigError(f"the {controller.name} controller rewards copies on val: data.val_size > 0")
  ctrl_key = controller_key(config.seed)
  fresh, first_hparams = {}, {}
  if controller is not None:
    fresh["controller"] = controller.init(jax.random.fold_in(ctrl_key, 0))
    # The model may need per-copy inputs to be built (a space's array build: an encoding).
    _, first_hparams, _ = controller.ask(fresh["controller"], jax.random.fold_in(ctrl_key, 1))
    fresh["hparams"] = first_hparams  # the last trunk's, checkpointed for the final evaluation
  fresh["pop"] = engine.init_population(same_init, hparams=first_hparams)
  if warm_start is not None and run.ckpt.latest_step() is None:
    fresh["pop"] = warm_start(fresh["pop"])
  meta0 = {"wall_time_s": 0.0, "train_s": 0.0, "rewards": [], "best_copy": [], "last": "keep"}
  start, state, meta = run.restore_or(fresh, meta0)
  pop, ctrl = state["pop"], state.get("controller")
  host_hparams = jax.device_get(state.get("hparams", {}))
  history = _load_history(run.history_path, len(meta["rewards"]))
  total = run.total_steps
  timer = Timer(meta["wall_time_s"])
  clock = {k: meta.get(k, 0) for k in ("train_s", "timed_s", "timed_steps")}
  clear_aux = jax.jit(
    lambda p: p.replace(aux=jax.tree.map(jnp.zeros_like, p.aux)),
    out_shardings=run.pop.copy_sharding(),
  )
  trunks = trunk_schedule(total, trunk_steps)
  bar = progress_bar(run, start, controller.name if controller else config.method)
  saved = lambda: {
    "pop": pop,
    **({"controller": ctrl, "hparams": host_hparams} if controller else {}),
  }
  with preemption.catch_stop_signals():  # SIGTERM/SIGINT: save, then stop
    for t, (t0, t1) in enumerate(trunks):
      if t1 <= start:
        continue
      asked, host_hparams, shared = ctrl, {}, {}
      if controller is not None:
        # `ctrl` stays the trunk-start state (saved inside the trunk), so a resume inside the
        # trunk asks again identically; tell continues from the state ask returned.
        asked, host_hparams, shared = controller.ask(ctrl, jax.random.fold_in(ctrl_key, t + 1))
      hparams = run.pop.put_copies(host_hparams)
      shared = run.pop.put_replicated(shared)
      s = max(t0, start)
      while s < t1:
        end = min(t1, (s // checkpoint_every + 1) * checkpoint_every) if checkpoint_every else t1
        pop, s = train_steps(run, pop, hparams, shared, s, end, bar, clock)
        if s < t1:  # a checkpoint inside the trunk (or where a stop signal ended the steps early):
          # the controller as at the trunk's start
          meta.update(wall_time_s=timer.elapsed, **clock)
          run.save(s, saved(), meta)
          run.stop_if_requested(s)
      if "val" in engine.eval_sets:
        val = engine.evaluate(pop, "val", host_hparams)
        acc = np.asarray(val["accuracy"], np.float64)
        finite = np.isfinite(acc) & np.isfinite(np.asarray(val["loss"], np.float64))
        rewards = np.where(finite, acc, 0.0)
        if not finite.any():
          run.close()
          raise DivergedError(
            f"every copy diverged by step {t1} (non-finite val loss/accuracy in all "
            f"{run.pop.size}); the last good checkpoint is kept: lower optim.lr (now "
            f"{config.optim.lr}) or set optim.grad_clip, then re-run"
          )
        if not finite.all():
          logging.warning(
            "trunk %d: copies %s diverged (non-finite val)", t, np.flatnonzero(~finite)
          )
        row = {"trunk": t, **_val_row(val, finite), **reward_signal_noise(val, finite)}
        report = TrunkReport(t, rewards, finite, val, jax.device_get(pop.aux), pop, host_hparams)
        action, info = Keep(), {}
        if controller is None and config.population.reset_diverged and not finite.all():
          action = Reinit(tuple(int(i) for i in np.flatnonzero(~finite)))
        if controller is not None:
          if "acc_snr" in row:
            say(
              f"trunk {t}: copies' val accuracy spread {row['acc_spread']:.4f}: signal "
              f"{row['acc_signal']:.4f}, val noise {row['acc_noise']:.4f} (signal/noise "
              f"{row['acc_snr']:.2f}; of val loss {row.get('loss_snr', float('nan')):.2f})"
            )
          ctrl, action, info = controller.tell(asked, report)
          for k, v in controller.history(ctrl).items():
            history.setdefault(k, []).append(np.asarray(v))
        pop = clear_aux(_apply(run, pop, action, t, same_init, host_hparams))
        meta["rewards"].append(rewards.tolist())
        for kind in ("acc", "loss"):
          meta.setdefault(f"{kind}_snr", []).append(row.get(f"{kind}_snr"))
        meta["best_copy"].append(report.best())
        meta["last"] = type(action).__name__.lower()
        row.update({f"{controller.name}_{k}": v for k, v in info.items()} if controller else {})
        run.writer.write_scalars(t1, row)
        if controller is not None:
          history.setdefault("rewards", []).append(rewards)
          history.setdefault("best_copy", []).append(np.int32(report.best()))
          _save_history(run.history_path, history)
      meta.update(wall_time_s=timer.elapsed, **clock)
      run.save(t1, saved(), meta)
      run.stop_if_requested(t1)
  bar.close()

  summary = {
    "method": config.method,
    "population_size": run.pop.size,
    "trunk_steps": trunk_steps,
    "trunks": len(trunks),
    "steps": total,
    "epochs": total / engine.steps_per_epoch,
    "mapping": run.pop.mapping,
  }
  # After a broadcast every copy holds the same model: evaluate it once.
  summary.update(_final_eval(run, pop, host_hparams, identical=meta["last"] == "broadcast"))
  if controller is not None:
    summary["rewards"] = meta["rewards"]
    summary["best_copy_per_trunk"] = meta["best_copy"]
    summary["best_val_per_trunk"] = [r[b] for r, b in zip(meta["rewards"], meta["best_copy"])]
    # Per trunk: the reward's signal / noise over the copies (`reward_signal_noise`).
    summary["acc_snr"], summary["loss_snr"] = meta.get("acc_snr", []), meta.get("loss_snr", [])
    arrays = {k: np.stack(v) for k, v in history.items()}
    summary.update(controller.summary(ctrl, arrays, run.workdir))
  summary["wall_time_s"] = timer.elapsed
  summary["train_time_s"] = clock["train_s"]
  # Training images per second of step time, compiles excluded (the first step of every
  # stretch of steps is left out of the clock; `experiment.train_steps`).
  timed_steps = clock["timed_steps"] or total
  timed_s = clock["timed_s"] if clock["timed_steps"] else clock["train_s"]
  summary["images_per_s"] = engine.images_per_step() * timed_steps / max(timed_s, 1e-9)
  if summary["test_accuracy"] is not None:  # val was written at the last trunk's end
    run.writer.write_scalars(total, {"test_accuracy": summary["test_accuracy"]})
  return RunResult(run.finish(summary), pop, ctrl, host_hparams)
