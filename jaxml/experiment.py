"""The run directory of a population method, built from its config: data, the `Engine`,
checkpoints, metrics and summary — so a method file is only its recipe (`jaxml.trunks` runs it).

`PopulationRun` saves and restores the state that is checkpointed together: the population
(`CopyState` with a leading copy axis), an optional controller pytree (e.g. OHL's theta and its
Adam state) and a JSON-able metadata dict (histories, accumulated wall time). Re-running on the
same workdir restores the latest good checkpoint and continues bit-identically (the data order,
every augmentation and dropout mask derive from the seed and the integer step).
"""

import collections
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from jaxml import checkpoint, configs, preemption, training
from jaxml.data import build_datasets, cifar10, validate_data_config
from jaxml.engine import Engine
from jaxml.errors import ConfigError
from jaxml.metrics import plots
from jaxml.metrics.writers import RunWriter
from jaxml.models import model_from_config
from jaxml.population import Population, nonfinite_copies, to_host

SPLITS = ("val", "test")


def load_datasets(data_cfg: ml_collections.ConfigDict, seed: int):
  """`build_datasets`, checking per-class counts only for a copy found by the default search.

  A CIFAR-10 copy found through `$JAXML_DATA_DIR`, `../shared/data` or TFDS must be complete
  (5000 train / 1000 test images per class), so a truncated copy of the real data is an error. A
  copy in an explicit `config.data.dir` (the only place searched then) may have any size: that is
  how a custom or tiny copy is used (tests, debugging); a warning says when it is not the full
  data set.
  """
  validate_data_config(data_cfg)
  expected = None if data_cfg.dir else cifar10.FULL_PER_CLASS
  data = build_datasets(data_cfg, seed, expected_per_class=expected)
  n_test = int(data.test.labels.shape[0])
  full_test = cifar10.FULL_PER_CLASS[1] * cifar10.NUM_CLASSES
  if expected is None and n_test != full_test:
    logging.warning(
      "config.data.dir=%s holds a CIFAR-10 copy with %d test images, not the full "
      "%d: results are not comparable with full CIFAR-10.",
      data_cfg.dir,
      n_test,
      full_test,
    )
  return data


def _check_schedule_fits(config, steps_per_epoch: int, total_steps: int) -> None:
  """A warm-up as long as the run never reaches the learning rate the config asks for."""
  warmup = int(round(config.optim.warmup_epochs * steps_per_epoch))
  configs.check(
    warmup < total_steps,
    f"optim.warmup_epochs={config.optim.warmup_epochs} is {warmup} steps, not shorter than the "
    f"run's {total_steps} steps: the learning rate would never reach optim.lr",
  )


class PopulationRun:
  """A population run directory: config, data, the `Engine`, checkpoints and metrics writer."""

  def __init__(
    self,
    config: ml_collections.ConfigDict,
    workdir: str,
    controller=None,
    trunk: str = "",
    eval_splits: tuple[str, ...] = SPLITS,
    data=None,
    reports: bool = True,
  ):
    """`controller` (see `jaxml.trunks.Controller`) supplies the engine hooks (augment_fn,
    loss_fn, aux_init); None when the method has none. `trunk` names the config block whose
    `trunk_steps` / `trunk_epochs` set a controller's trunk (e.g. 'ohl'): `self.trunk_steps`.
    `eval_splits`: the splits the engine evaluates (val rewards the copies; a study whose ground
    truth is a table leaves 'test' out, a search never scores it). `data`: the datasets of
    `config.data` already loaded (`load_datasets`), e.g. once for many runs of one study.
    `reports=False` leaves out the run's TensorBoard log and plots/curves.png (metrics.jsonl and
    summary.json stay): for the cells of a study, whose own table and plots are the report
    (together ~2 s a cell on the 2-core CPU, of a ~16 s per-cell overhead)."""
    self.config = config
    self.workdir = pathlib.Path(workdir)
    # Everything that can refuse the run (data, sizes, the model) comes before the first file is
    # written: a run that cannot start leaves its workdir as it found it.
    self.data = data if data is not None else load_datasets(config.data, config.seed)
    p = config.population
    self.pop = Population(p.size, p.mapping, fast_compile=p.fast_compile)
    n_train = int(self.data.train.images.shape[0])
    steps_per_epoch = n_train // config.batch_size
    if steps_per_epoch == 0:
      raise ConfigError(f"batch_size={config.batch_size} exceeds the {n_train} training images")
    self.total_steps = configs.steps("num", config, steps_per_epoch)
    _check_schedule_fits(config, steps_per_epoch, self.total_steps)
    largest = max(int(getattr(self.data, s).labels.shape[0]) for s in SPLITS)
    configs.check(
      config.eval_batch_size <= largest,
      f"eval_batch_size={config.eval_batch_size} exceeds the largest eval split ({largest} "
      f"images): every eval batch would be mostly padding; use at most {largest}",
    )
    if trunk:
      self.trunk_steps = configs.steps("trunk", config[trunk], steps_per_epoch)
      # One trunk spanning the run would update the controller only after all training is done.
      configs.check(
        self.total_steps >= 2 * self.trunk_steps,
        f"{trunk} trunks of {self.trunk_steps} steps (from {trunk}.trunk_steps / trunk_epochs) "
        f"leave no trunk after the first in a run of {self.total_steps} steps: the controller "
        f"would never act on training; use trunks of at most {self.total_steps // 2} steps",
      )
    model = model_from_config(config.model, self.data.num_classes)
    self.schedule = training.make_lr_schedule(
      config.optim, steps_per_epoch, self.total_steps, batch_size=config.batch_size
    )
    tx = training.make_optimizer(config.optim, self.schedule)
    hook = lambda name: getattr(controller, name, None)
    self._engine_args = dict(
      train=(self.data.train.images, self.data.train.labels),
      eval_sets=self._eval_sets(eval_splits),
      batch_size=config.batch_size,
      eval_batch_size=config.eval_batch_size,
      num_classes=self.data.num_classes,
      resolution=config.data.resolution,
      dtype=jnp.bfloat16 if config.model.dtype == "bfloat16" else jnp.float32,
      augment=config.data.augment,
      label_smoothing=config.optim.label_smoothing,
      same_batch=config.population.same_batch,
      seed=config.seed,
      augment_fn=hook("augment_fn"),
      loss_fn=hook("loss_fn"),
      aux_init=hook("aux_init"),
    )
    self.engine = Engine(self.pop, model, tx, **self._engine_args)
    self.writer = RunWriter(self.workdir, tensorboard=reports)
    self.reports = reports
    self.history_path = self.workdir / "trunks.npz"
    self.eta = EtaEstimate(self.total_steps, self.pop.mesh.devices.flat[0].platform)
    self.ckpt = checkpoint.Checkpointer(
      self.workdir / "checkpoints", max_to_keep=config.keep_checkpoints
    )

  def _eval_sets(self, splits) -> dict:
    unknown = set(splits) - set(SPLITS)
    if unknown:
      raise ValueError(f"eval splits {sorted(unknown)}: valid are {SPLITS}")
    return {s: (getattr(self.data, s).images, getattr(self.data, s).labels) for s in splits}

  def use_model(
    self, model, tx=None, *, schedule=None, eval_splits: tuple[str, ...] | None = None, **overrides
  ) -> Engine:
    """Rebuilds the engine around another model with the run's data, hooks and settings (e.g. a
    supernet wrapping the config's array build: DARTS, SPOS, PC-NAS, CRNAS). `tx` replaces the
    optimizer and `schedule` the learning rate logged with it; `eval_splits` the splits
    evaluated; `overrides` any other `Engine` argument (e.g. `train_step`, `step_args`: DARTS's
    bilevel step). Returns the new engine, which the trunk loop then runs."""
    if schedule is not None:
      self.schedule = schedule
    self.engine = self.engine_for(model, tx, eval_splits=eval_splits, **overrides)
    return self.engine

  def engine_for(
    self,
    model,
    tx=None,
    *,
    population: Population | None = None,
    eval_splits: tuple[str, ...] | None = None,
    **overrides,
  ) -> Engine:
    """A new engine of `model` with the run's data, hooks and settings, leaving `self.engine`
    as it is: e.g. one engine per architecture of a search that trains each network through its
    fixed build (`population`: its own copies, e.g. one). Arguments as `use_model`."""
    args = {**self._engine_args, **overrides}
    if eval_splits is not None:
      args["eval_sets"] = self._eval_sets(eval_splits)
    return Engine(population or self.pop, model, tx or self.engine.tx, **args)

  def restore_or(self, state: dict, metadata: dict) -> tuple[int, dict, dict]:
    """Latest good checkpoint (step, state, metadata), or (0, the given fresh ones)."""
    found = self.ckpt.restore_latest(checkpoint.abstract_tree(state))
    # Written once the checkpoint (if any) is known to fit: a run refused before this point
    # leaves the config.json of the run already in the directory as it was.
    self.writer.write_config(self.config)
    if found is None:
      return 0, state, metadata
    step, restored, meta = found
    if jax.process_index() == 0:
      print(f"jaxml: resuming {self.workdir} from step {step}", file=sys.stderr)
    self.writer.truncate_after(step)
    return step, restored, meta

  def save(self, step: int, state: dict, metadata: dict) -> None:
    self.ckpt.save(step, state, metadata)

  def check_finite(self, metrics: dict, step: int) -> list[int]:
    bad = nonfinite_copies(metrics["loss"])
    if bad:
      logging.warning(
        "step %d: non-finite training loss in copies %s (others unaffected)", step, bad
      )
    return bad

  def finish(self, summary: dict) -> dict:
    summary.setdefault("device", f"{jax.device_count()}x {jax.devices()[0].device_kind}")
    summary.setdefault("jax_version", jax.__version__)
    summary.setdefault("data_source", self.data.source)
    self.writer.write_summary(summary)
    if self.reports:
      plots.plot_curves(self.writer.metrics_path, self.workdir / "plots" / "curves.png")
    self.close()
    return summary

  def close(self) -> None:
    """Flushes and stops the metrics writer (its TensorBoard thread) and the checkpointer."""
    self.writer.close()
    self.ckpt.close()

  def stop_if_requested(self, step: int) -> None:
    """After the checkpoint at `step`: leave with `Preempted` if a stop signal arrived."""
    signum = preemption.requested()
    if signum is not None:
      self.close()
      raise preemption.Preempted(signum, step, self.workdir)


def say(message: str) -> None:
  """One line on stderr from process 0, on a line of its own (above a running progress bar)."""
  if jax.process_index() != 0:
    return
  from tqdm import tqdm

  tqdm.write(f"jaxml: {message}", file=sys.stderr)
  sys.stderr.flush()


class EtaEstimate:
  """Says when the first step compiles, then times a few steps after it and prints, once per
  process, how long the rest of the run will take; on a CPU, a run estimated past an hour also
  gets the way to a quick try (the config's `:smoke` variant) and to a GPU. Evaluation and
  checkpoints are not in it.

  `config_path`: the experiment file that was run (set by `jaxml.main`), named in the advice.
  """

  config_path: str | None = None

  def __init__(self, total_steps: int, platform: str, measure_steps: int = 5, seconds=2.0):
    self.total, self.platform = total_steps, platform
    self.measure_steps, self.seconds = measure_steps, seconds
    self.first: int | None = None
    self.t0 = 0.0
    self.done = False
    self.compiling_said = False

  def begin(self) -> None:
    """A new stretch of steps: its first step may compile again (or follow an evaluation)."""
    self.first = None
    if not self.compiling_said:
      self.compiling_said = True
      say(f"compiling the train step on {self.platform} (the first step waits for it) ...")

  def after_step(self, step: int, pop) -> None:
    if self.done or step >= self.total:
      return
    # Each step is waited for (`train_steps`), so the clock reads finished steps.
    preemption.wait_ready(pop)
    if self.first is None:  # the compile and the steps queued before stay out of the window
      self.first, self.t0 = step, time.perf_counter()
      return
    n, elapsed = step - self.first, time.perf_counter() - self.t0
    if n < self.measure_steps or elapsed < self.seconds:
      return
    per_step = elapsed / n
    self.done = True
    say(self.message(per_step, self.total - step))

  def message(self, per_step: float, remaining: int) -> str:
    eta = per_step * remaining
    text = (
      f"about {human_duration(eta)} of training left ({remaining} steps at {per_step:.3g} s/step "
      f"on {self.platform}; evaluation and checkpoints not included)"
    )
    if self.platform == "cpu" and eta > 3600:
      path = self.config_path or "experiments/<method>/<name>.py"
      text += (
        f". This is a GPU-sized job on a CPU: for a quick try use --config {path}:smoke, or "
        'install the GPU build (pip install -e ".[cuda]", README "Running on a GPU")'
      )
    return text


def human_duration(seconds: float) -> str:
  """'42 s', '7 min', '3 h 05 min', '4.2 days'."""
  if seconds < 60:
    return f"{seconds:.0f} s"
  if seconds < 3600:
    return f"{seconds / 60:.0f} min"
  if seconds < 48 * 3600:
    h, m = divmod(round(seconds / 60), 60)
    return f"{h} h {m:02d} min"
  return f"{seconds / 86400:.1f} days"


class Timer:
  """Wall time that survives resume: `elapsed` = time of earlier sessions + this one."""

  def __init__(self, before: float = 0.0):
    self.before = before
    self.start = time.perf_counter()

  @property
  def elapsed(self) -> float:
    return self.before + time.perf_counter() - self.start


def train_steps(
  run: PopulationRun,
  pop,
  hparams,
  shared,
  start: int,
  end: int,
  bar=None,
  timer: dict | None = None,
  max_ahead: int = 0,
):
  """Steps [start, end) of the population; logs train metrics every `log_every_steps`.

  Returns (population, the step reached): `end`, or earlier when a stop signal arrived
  (`jaxml.preemption`: the step in flight finishes, then the loop returns). At most
  `max_ahead` steps are dispatched beyond the one in flight: JAX's asynchronous dispatch would
  otherwise queue steps for as long as the host is ahead (17 steps, ~14 minutes, were measured
  queued on a CPU), and a stop would wait for all of them. The cost of the bound is measured by
  `benchmarks/dispatch_bound.py`.
  `timer['train_s']` accumulates the time spent in training steps; `timer['timed_s']` and
  `timer['timed_steps']` the same without the first step of each call (the one that may
  compile), from which the summary's images/s is computed.
  """
  t0 = time.perf_counter()
  log_every = run.config.log_every_steps
  reached = start
  run.eta.begin()
  in_flight: collections.deque = collections.deque()
  t_first = None
  for s in range(start, end):
    if preemption.requested():
      break
    preemption.note_step(s)
    pop, metrics = run.engine.step(pop, hparams, shared, s)
    in_flight.append(metrics)
    while len(in_flight) > max_ahead:
      preemption.wait_ready(in_flight.popleft())
    if t_first is None and not in_flight:  # the first step is done: time from here
      t_first = (time.perf_counter(), s + 1)
    run.eta.after_step(s + 1, pop)
    if (s + 1) % log_every == 0 or s + 1 == end:
      m = to_host(metrics)
      bad = run.check_finite(m, s + 1)
      ok = [i for i in range(run.pop.size) if i not in bad]
      row = {
        "train_loss": float(np.mean(m["loss"][ok])) if ok else float("nan"),
        "train_accuracy": float(np.mean(m["accuracy"][ok])) if ok else float("nan"),
        "lr": float(run.schedule(s)),
      }
      if run.pop.size > 1:
        row["train_loss_per_copy"] = m["loss"].tolist()
      run.writer.write_scalars(s + 1, row)
      if bar is not None:
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", acc=f"{row['train_accuracy']:.3f}")
    if bar is not None:
      bar.update(1)
      if t_first is not None and t_first[1] == s + 1 and not getattr(bar, "compile_excluded", 0):
        # The bar's rate from here on: the compiling first step of the run is left out of it.
        bar.start_t, bar.initial, bar.compile_excluded = time.time(), bar.n, 1
    reached = s + 1
  preemption.wait_ready(pop)
  if timer is not None:
    t1 = time.perf_counter()
    timer["train_s"] = timer.get("train_s", 0.0) + t1 - t0
    if t_first is not None and reached > t_first[1]:
      timer["timed_s"] = timer.get("timed_s", 0.0) + t1 - t_first[0]
      timer["timed_steps"] = timer.get("timed_steps", 0) + reached - t_first[1]
  return pop, reached


def progress_bar(run: PopulationRun, start: int, desc: str):
  """The run's progress bar; its rate is the average since the first (compiling) step ended
  (`train_steps` restarts its clock there once)."""
  from tqdm import tqdm

  return tqdm(
    smoothing=0,
    total=run.total_steps,
    initial=start,
    desc=desc,
    unit="step",
    dynamic_ncols=True,
    disable=not run.config.progress or jax.process_index() != 0,
  )
