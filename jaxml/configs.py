"""Shared config pieces and value checks for population-training methods (train, ohl, ...).

Experiment files (`experiments/<method>/<name>.py`) start from `training_config()` and set what
differs, reading their `:arg` with `parse_variants`; `validate_training_config` rejects impossible
values with one clear `ConfigError`; `steps` turns a `{prefix}_steps` / `{prefix}_epochs` pair into
a step count.
"""

import math
import os
from collections.abc import Sequence

import jax
import ml_collections

from jaxml.data import default_data_config
from jaxml.errors import ConfigError
from jaxml.models import default_model_config

__all__ = [
  "default_model_config",
  "parse_variants",
  "steps",
  "training_config",
  "validate_training_config",
]


def parse_variants(
  arg: str | None,
  valid: Sequence[str],
  *,
  name: str,
  exclusive: Sequence[tuple[str, str]] = (),
) -> set[str]:
  """The variants of an experiment file's `:arg`, e.g. 'smoke,frozen' -> {'smoke', 'frozen'}.

  None or '' is the full run (no variants). An unknown variant or two variants of one `exclusive`
  pair raise one-line `ConfigError`s naming the experiment file `name` and the valid variants.
  """
  for a, b in exclusive:  # a typo here is the experiment file's bug, not the user's
    if a not in valid or b not in valid:
      raise ValueError(f"exclusive pair ({a!r}, {b!r}) names a variant not in {list(valid)}")
  parts = {p.strip() for p in (arg or "").split(",") if p.strip()}
  unknown = sorted(parts - set(valid))
  if unknown:
    raise ConfigError(
      f"unknown config arg {', '.join(map(repr, unknown))} for {name} "
      f"(valid: {', '.join(valid)}, comma-separated)"
    )
  for a, b in exclusive:
    if {a, b} <= parts:
      raise ConfigError(f"config args {a!r} and {b!r} exclude each other (in {name})")
  return parts


# Fields that cannot change a run's result: where the data lies, how often progress is shown,
# logged and checkpointed. A resumed run may change them (`jaxml.rundir.check_same_config`), and
# `python -m jaxml.compare` leaves them out of its table.
RESULT_NEUTRAL_KEYS = (
  "data.dir",
  "data.cache_dir",
  "data.download",
  "progress",
  "log_every_steps",
  "keep_checkpoints",
  "checkpoint_every_steps",
  "checkpoint_every_epochs",
)


def steps(prefix: str, config, steps_per_epoch: int, *, default: int | None = None) -> int:
  """A duration in steps from `{prefix}_steps` or `{prefix}_epochs` of `config`.

  `{prefix}_steps` > 0 wins; else `{prefix}_epochs` > 0 gives round(epochs * steps_per_epoch),
  at least 1 (Python's round, as the trainers always used, so resumed runs keep their step
  counts); else `default`, or a `ConfigError` naming both keys when there is none. A missing key
  counts as unset. E.g. steps('num', config, spe), steps('trunk', config.ohl, spe),
  steps('eval_every', config, spe).
  """
  steps_key, epochs_key = f"{prefix}_steps", f"{prefix}_epochs"
  n_steps, n_epochs = config.get(steps_key), config.get(epochs_key)
  if n_steps is not None and n_steps > 0:
    return int(n_steps)
  if n_epochs is not None and n_epochs > 0:
    if steps_per_epoch < 1:
      raise ConfigError(f"{epochs_key}={n_epochs} needs >= 1 step per epoch, got {steps_per_epoch}")
    return max(1, int(round(n_epochs * steps_per_epoch)))
  if default is not None:
    return default
  raise ConfigError(
    f"set {steps_key} > 0 or {epochs_key} > 0 (got {steps_key}={n_steps}, {epochs_key}={n_epochs})"
  )


def optim_config(**overrides) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.lr = 0.1
  c.momentum = 0.9
  c.nesterov = True
  c.weight_decay = 5e-4
  c.schedule = "cosine"  # cosine | step | constant
  c.warmup_epochs = 0.0
  c.decay_epochs = (60.0, 120.0, 160.0)  # for schedule='step'
  c.decay_factor = 0.2
  c.label_smoothing = 0.0
  c.grad_clip = 0.0  # global-norm clip; 0 disables
  # Large-batch training (Goyal et al. 2017; You et al. 2017), see training.make_lr_schedule:
  c.optimizer = "sgd"  # sgd | lars (optax.lars; biases and BN params excluded: training.lars)
  c.trust_coefficient = 0.001  # LARS eta (You et al. Eq. 6)
  c.trust_eps = 0.0  # LARS: added to the trust ratio's denominator
  c.momentum_correction = False  # LARS only: rescale the velocity by eta_{t+1}/eta_t (§2.2)
  c.linear_scaling = False  # peak lr = lr * batch_size / base_batch_size (Goyal et al. §2.1)
  c.base_batch_size = 256  # the batch size `lr` is tuned for, under linear_scaling
  c.warmup_start_factor = 0.0  # warm-up starts at this fraction of the peak lr (1/k: Goyal)
  c.update(overrides)
  return c


def population_config(**overrides) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.size = 1  # K copies trained in lockstep
  c.mapping = "auto"  # auto | vmap | loop | scan (see jaxml/population.py)
  c.same_batch = True  # all copies read the same batch (their augmentations still differ)
  c.same_init = False  # all copies start from the same weights (OHL) or from K seeds
  c.fast_compile = False  # CPU: cheaper compiles, slower steps (population.FAST_COMPILE_CPU)
  c.reset_diverged = False  # plain training: restart diverged copies at the trunk end
  c.update(overrides)
  return c


def training_config(method: str, model: str) -> ml_collections.ConfigDict:
  """All fields every population-training method reads, with CIFAR defaults."""
  c = ml_collections.ConfigDict()
  c.method = method
  c.seed = 0
  c.data = default_data_config()
  c.model = default_model_config(model)
  c.optim = optim_config()
  c.population = population_config()
  c.batch_size = 128
  c.eval_batch_size = 500
  c.num_epochs = 200.0
  c.num_steps = -1  # > 0 overrides num_epochs (smoke runs)
  c.log_every_steps = 50
  # Intervals read with configs.steps(prefix, config, steps_per_epoch): `*_steps` > 0 wins.
  c.eval_every_steps = 0  # 0: use eval_every_epochs
  c.eval_every_epochs = 1.0
  c.checkpoint_every_steps = 0  # 0: use checkpoint_every_epochs
  c.checkpoint_every_epochs = 1.0
  c.keep_checkpoints = 2
  c.progress = True  # tqdm bar with ETA on stderr
  return c


def shrink_for_cpu(c: ml_collections.ConfigDict, model: str, **model_fields) -> None:
  """The `smoke` variant of a big-model recipe: a tiny `model` at 16x16 on a 10% subset, 40
  steps, so the whole pipeline runs in well under a minute on a 2-core CPU."""
  c.model = default_model_config(model)
  c.model.update(model_fields)
  c.data.update(val_size=1000, sample_ratio=0.1, resolution=16)
  c.update(batch_size=64, num_steps=40, log_every_steps=10, eval_batch_size=1000)


def check(condition: bool, message: str) -> None:
  if not condition:
    raise ConfigError(message)


def validate_reinforce_controller(config: ml_collections.ConfigDict, name: str) -> None:
  """Checks shared by the REINFORCE-on-val-reward controllers (OHL, AM-LFS): the training
  fields, >= 2 copies, a trunk length, a policy learning rate and baseline, a val split. The
  method's own block is `config[name]`."""
  from jaxml.search.reinforce import BASELINES

  validate_training_config(config)
  block = config[name]
  check(config.population.size >= 2, f"{name} needs population.size >= 2 copies")
  check(
    block.trunk_steps > 0 or block.trunk_epochs > 0,
    f"set {name}.trunk_epochs or {name}.trunk_steps > 0",
  )
  check(block.policy_lr > 0, f"{name}.policy_lr must be > 0, got {block.policy_lr}")
  check(0 <= block.policy_b1 < 1, f"{name}.policy_b1 must be in [0, 1), got {block.policy_b1}")
  check(
    block.baseline in BASELINES,
    f"{name}.baseline={block.baseline!r}; valid: {', '.join(BASELINES)}",
  )
  check(config.data.val_size > 0, f"{name} rewards copies on the val split: data.val_size > 0")


def _check_step_schedule(optim: ml_collections.ConfigDict) -> None:
  """A step schedule needs its decay points (else it is silently constant) and a factor that
  keeps the learning rate positive."""
  epochs = tuple(optim.decay_epochs)
  check(
    len(epochs) > 0 and all(e > 0 for e in epochs) and list(epochs) == sorted(set(epochs)),
    f"optim.schedule='step' needs optim.decay_epochs: increasing epochs > 0, got {epochs}",
  )
  check(
    0 < optim.decay_factor <= 1,
    f"optim.decay_factor must be in (0, 1], got {optim.decay_factor}",
  )


def device_memory_bytes() -> int:
  """Memory of all local devices together: the accelerators' allocator limit, or the host's RAM
  for CPU devices (which share it)."""
  stats = [d.memory_stats() for d in jax.local_devices()]
  if all(s and "bytes_limit" in s for s in stats):
    return sum(s["bytes_limit"] for s in stats)
  return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _check_input_memory(config: ml_collections.ConfigDict) -> None:
  """Refuses a run whose float32 input batches alone (K copies x batch x resolution^2 x 3) exceed
  the devices' memory: a lower bound of what a train step needs, so it never refuses a run that
  fits, and it catches a mistyped population.size, batch_size or data.resolution in seconds
  instead of after loading data and compiling."""
  k, r = config.population.size, config.data.resolution
  need = 4 * 3 * r * r * k * max(config.batch_size, config.eval_batch_size)
  have = device_memory_bytes()
  check(
    need <= have,
    f"population.size={k} x batch {max(config.batch_size, config.eval_batch_size)} at "
    f"data.resolution={r} needs {need / 2**30:.1f} GiB for the input batches alone; the "
    f"devices have {have / 2**30:.1f} GiB",
  )


def check_finite(config: ml_collections.ConfigDict, prefix: str = "") -> None:
  """Every float field is finite: an inf or NaN learning rate, interval or sigma passes range
  checks written as `x > 0` (or fails them with a misleading message) and trains on NaNs."""
  for key, value in config.items():
    name = f"{prefix}{key}"
    if isinstance(value, ml_collections.ConfigDict):
      check_finite(value, f"{name}.")
    elif isinstance(value, float) and not math.isfinite(value):
      raise ConfigError(f"{name} must be a finite number, got {value}")
    elif isinstance(value, tuple | list):
      bad = [v for v in value if isinstance(v, float) and not math.isfinite(v)]
      check(not bad, f"{name} must hold finite numbers, got {tuple(value)}")


def validate_large_batch_optim(optim: ml_collections.ConfigDict) -> None:
  """Checks of the LARS / linear-scaling / warm-up fields of `optim_config` (absent = default)."""
  name = optim.get("optimizer", "sgd")
  check(name in ("sgd", "lars"), f"optim.optimizer={name!r}; valid: sgd, lars")
  correction = optim.get("momentum_correction", False)
  check(
    not (correction and name == "sgd"),
    "optim.momentum_correction=True needs optim.optimizer='lars' (SGD's gradient-form momentum "
    "needs no correction)",
  )
  check(
    optim.get("trust_coefficient", 0.001) > 0,
    f"optim.trust_coefficient must be > 0, got {optim.get('trust_coefficient')}",
  )
  check(optim.get("trust_eps", 0.0) >= 0, f"optim.trust_eps must be >= 0, got {optim.trust_eps}")
  check(
    optim.get("base_batch_size", 256) > 0,
    f"optim.base_batch_size must be > 0, got {optim.get('base_batch_size')}",
  )
  start = optim.get("warmup_start_factor", 0.0)
  check(0.0 <= start <= 1.0, f"optim.warmup_start_factor must be in [0, 1], got {start}")


def check_space_model(config, block: str, spaces: dict, what: str) -> None:
  """`config.<block>.space` is one of `spaces` (space -> model name) and `config.model.name` is
  that space's network; `what` says what the method does with it ('searches the ... network')."""
  space = config[block].space
  check(space in spaces, f"{block}.space={space!r}; valid: {', '.join(spaces)}")
  check(
    config.model.name == spaces[space],
    f"{block}.space={space!r} {what.format(repr(spaces[space]))}: set "
    f"model.name={spaces[space]!r} (got {config.model.name!r})",
  )


def check_seed(seed) -> None:
  """A run's seed is an int >= 0 (numpy's and the NB201 cell draws refuse negative seeds)."""
  ok = isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0
  check(ok, f"seed must be an int >= 0, got {seed!r}")


def validate_training_config(config: ml_collections.ConfigDict) -> None:
  """Value checks shared by every population-training method."""
  n_dev = jax.device_count()
  check_seed(config.seed)
  check(config.batch_size > 0, f"batch_size must be > 0, got {config.batch_size}")
  check(config.eval_batch_size > 0, f"eval_batch_size must be > 0, got {config.eval_batch_size}")
  check(config.num_epochs > 0 or config.num_steps > 0, "set num_epochs > 0 or num_steps > 0")
  check(config.population.size >= 1, f"population.size must be >= 1, got {config.population.size}")
  # Each device runs its own copies, or a share of one copy's batch when K < devices.
  k = config.population.size
  data_shards = n_dev // k if (n_dev % k == 0 and k < n_dev) else 1
  check(
    config.batch_size % data_shards == 0 and config.eval_batch_size % data_shards == 0,
    f"batch_size={config.batch_size} and eval_batch_size={config.eval_batch_size} must be "
    f"divisible by the {data_shards} devices that share each copy's batch",
  )
  check(config.optim.lr > 0, f"optim.lr must be > 0, got {config.optim.lr}")
  check(
    0.0 <= config.optim.momentum < 1.0,
    f"optim.momentum must be in [0,1), got {config.optim.momentum}",
  )
  check(config.optim.weight_decay >= 0, "optim.weight_decay must be >= 0")
  check(0.0 <= config.optim.label_smoothing < 1.0, "optim.label_smoothing must be in [0,1)")
  check(config.optim.warmup_epochs >= 0, "optim.warmup_epochs must be >= 0")
  validate_large_batch_optim(config.optim)
  check(
    config.optim.grad_clip >= 0,
    f"optim.grad_clip must be >= 0 (0: off), got {config.optim.grad_clip}",
  )
  if config.optim.schedule == "step":
    _check_step_schedule(config.optim)
  check(
    config.model.dtype in ("float32", "bfloat16"),
    f"model.dtype must be 'float32' or 'bfloat16', got {config.model.dtype!r}",
  )
  check(config.log_every_steps > 0, "log_every_steps must be > 0")
  # A negative interval would make the step loop of methods/train.py count down forever.
  for prefix in ("eval_every", "checkpoint_every"):
    steps_key, epochs_key = f"{prefix}_steps", f"{prefix}_epochs"
    check(
      config[steps_key] >= 0,
      f"{steps_key} must be >= 0 (0: use {epochs_key}), got {config[steps_key]}",
    )
    check(config[epochs_key] >= 0, f"{epochs_key} must be >= 0, got {config[epochs_key]}")
    check(
      config[steps_key] > 0 or config[epochs_key] > 0,
      f"set {steps_key} > 0 or {epochs_key} > 0",
    )
  check(config.keep_checkpoints >= 1, "keep_checkpoints must be >= 1")
  _check_input_memory(config)
  from jaxml.data import validate_data_config
  from jaxml.models import model_from_config
  from jaxml.population import mesh_shape, resolve_mapping
  from jaxml.training import SCHEDULES

  check(
    config.optim.schedule in SCHEDULES,
    f"optim.schedule={config.optim.schedule!r}; valid: {', '.join(SCHEDULES)}",
  )
  # Building the (unbound) module checks the model name, fields and dtype before any data loads.
  model_from_config(config.model, 10)
  validate_data_config(config.data)
  resolve_mapping(config.population.mapping)
  mesh_shape(k, n_dev)
