"""Shared set-up and timing for the training-throughput benchmarks.

`population_setup` builds the production `jaxml.engine.Engine` that `python -m jaxml.main`
steps: the model from the registry, `training.make_optimizer` with the default SGD + Nesterov +
cosine config, the default crop + flip augmentation, a `Population` of K copies with the state
donated; the data are synthetic uint8 images resident on device (replicated). The copies start
from identical weights (`same_init`: one init compiled and run), since weight values do not
change the step time.

Timing (`Stepper`): compile time is the ahead-of-time `lower(...).compile()` of the mapped step
(trace + lowering + XLA compilation, no execution); steady state is measured in windows after a
warm-up step, each window blocked with `jax.block_until_ready`, and reported as the median over
windows, so a burst of load from other processes on a shared machine moves it less than a mean.
"""

import dataclasses
import datetime
import json
import os
import pathlib
import statistics
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxml import configs, training
from jaxml.data import default_data_config, pipeline
from jaxml.engine import Engine
from jaxml.models import get_model
from jaxml.population import Population

NUM_CLASSES = 10


def environment() -> dict[str, Any]:
  """Device, backend, versions, date and load: the context every record carries."""
  dev = jax.devices()[0]
  if dev.platform == "cpu":
    device = f"cpu ({os.cpu_count()} cores)"
  else:
    device = dev.device_kind
  if jax.device_count() > 1:
    device = f"{jax.device_count()}x {device}"
  return {
    "device": device,
    "backend": jax.default_backend(),
    "num_devices": jax.device_count(),
    "jax_version": jax.__version__,
    "date": datetime.date.today().isoformat(),
    "load_avg": [round(x, 2) for x in os.getloadavg()],
  }


def synthetic_data(num_examples: int, image: int, seed: int = 0):
  """uint8 [N, image, image, 3] uniform-noise images and int32 labels (CIFAR-10 shaped)."""
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 256, (num_examples, image, image, 3), dtype=np.uint8)
  labels = rng.integers(0, NUM_CLASSES, (num_examples,)).astype(np.int32)
  return images, labels


@dataclasses.dataclass
class Stepper:
  """A compiled population train step of an `Engine` plus its live state; `run(n)` does n steps."""

  engine: Engine
  compiled: Any
  state: Any
  hparams: Any
  compile_s: float
  step: int = 0

  @property
  def pop(self) -> Population:
    return self.engine.pop

  @property
  def batch(self) -> int:
    return self.engine.batch_size

  def run(self, n: int) -> None:
    for _ in range(n):
      inputs = self.engine.step_inputs(self.hparams, {}, self.step)
      # The state is donated: always keep the returned one.
      self.state, _ = self.compiled(self.state, inputs)
      self.step += 1
    jax.block_until_ready(self.state)


def population_setup(
  model_name: str,
  *,
  k: int,
  mapping: str,
  batch: int,
  image: int = 32,
  dtype: str = "float32",
  num_examples: int | None = None,
  devices=None,
  seed: int = 0,
  hparams: Any = None,
  fast_compile: bool = False,
  **model_kwargs,
) -> Stepper:
  """K copies of `model_name` in the production `Engine`, ready to step on synthetic data.

  The data are fed at their own size (`resolution=image`), so `normalize` does not resize.
  `num_examples` defaults to 8 batches (the step only gathers its batch, so the resident set's
  size does not change the step time). `hparams` are the copies' per-copy inputs (e.g.
  `{'model': {'encoding': int32[k, 6]}}`). `fast_compile`: XLA:CPU without its optimisation
  passes (`Population`'s option): for the scripts' smoke modes, whose step times mean nothing
  and whose compiles dominate a CI run.
  """
  pop = Population(k, mapping, devices, fast_compile=fast_compile)
  model = get_model(model_name, NUM_CLASSES, dtype=dtype, **model_kwargs)
  n = num_examples or 8 * batch
  optim = configs.optim_config()
  steps_per_epoch = pipeline.steps_per_epoch(n, batch)
  schedule = training.make_lr_schedule(optim, steps_per_epoch, 1000 * steps_per_epoch)
  engine = Engine(
    pop,
    model,
    training.make_optimizer(optim, schedule),
    train=synthetic_data(n, image, seed),
    batch_size=batch,
    eval_batch_size=batch,
    num_classes=NUM_CLASSES,
    resolution=image,
    dtype=jnp.bfloat16 if dtype == "bfloat16" else jnp.float32,
    augment=default_data_config().augment,
    seed=seed,
  )
  # Identical initial weights (compiled and run once; weight values do not change the step time);
  # every copy keeps its own rng.
  hparams = pop.put_copies(hparams or {})
  state = engine.init_population(same_init=True, hparams=hparams)
  t0 = time.perf_counter()
  compiled = engine.train_step.lower(state, engine.step_inputs(hparams, {}, 0)).compile()
  compile_s = time.perf_counter() - t0
  return Stepper(engine, compiled, state, hparams, compile_s)


def timed_window(stepper: Stepper, min_steps: int, min_seconds: float) -> tuple[float, float, int]:
  """(wall s per step, process CPU s per step, steps) of one window of >= min_steps steps
  lasting >= min_seconds."""
  steps, t0, c0 = 0, time.perf_counter(), time.process_time()
  while steps < min_steps or time.perf_counter() - t0 < min_seconds:
    stepper.run(1)
    steps += 1
  return (time.perf_counter() - t0) / steps, (time.process_time() - c0) / steps, steps


def add_timing_args(parser, steps: int = 2, seconds: float = 2.0, what: str = "steps") -> None:
  """The timed-window flags every speed script shares (see `timed_window`)."""
  parser.add_argument("--steps", type=int, default=steps, help=f"min {what} per timed window")
  parser.add_argument("--seconds", type=float, default=seconds, help="min seconds per timed window")
  parser.add_argument("--windows", type=int, default=3, help="timed windows (median reported)")


def median(xs) -> float:
  return float(statistics.median(xs))


def print_table(header: list[str], rows: list[list[Any]]) -> None:
  """A GitHub-markdown table on stdout."""
  for line in (header, ["---"] * len(header), *rows):
    print("| " + " | ".join(str(v) for v in line) + " |", flush=True)


def write_json(path: str | None, payload: dict) -> None:
  if not path:
    return
  p = pathlib.Path(path)
  p.parent.mkdir(parents=True, exist_ok=True)
  p.write_text(json.dumps(payload, indent=2) + "\n")
  print(f"wrote {p}")


def int_list(text: str) -> list[int]:
  return [int(x) for x in text.split(",") if x.strip()]


def str_list(text: str) -> list[str]:
  return [x.strip() for x in text.split(",") if x.strip()]
