"""The GPU measurement suite: one command for a short device window, JSON + markdown tables.

Four parts, each bounded by its share of `--budget_s` (a part stops starting new measurements
once its share is spent and says what it skipped); results are rewritten to `--out` after every
record, so a run cut short still leaves what it measured.

1. `augment`: OHL's on-device augmentation as training runs it (`ohl.augment_fn`: a pair per
   image drawn from p_theta over the 1,296 pairs, applied with the fused kernel, pair counts
   accumulated), at batch 4,096 of 32x32 images: img/s. Target >= 1 M img/s.
2. `train`: the plain train step (`benchmarks/common.py`: what `jaxml.main` runs, K = 1) of
   ResNet-18 and ResNet-50 (CIFAR stems) at 32 px, bf16 / fp32, batch 256 / 1,024: img/s and
   MFU = model FLOP/s / the device's peak dense bf16 FLOP/s (fp32 rows too, against the same
   peak). Model FLOPs per step are `jaxml.metrics.flops.count_flops` of the whole train step:
   its convolutions and matrix products, forward and backward (ResNet-18: 3.33 GFLOP per image
   = 3 x 1.11 forward less the stem's unused input gradient).
3. `population`: aggregate img/s of K copies in one step vs K sequential K = 1 steps
   (`benchmarks/population_throughput.py`): the tiny proxy (tiny_cnn width 8, 16 px) at
   K = 1..128 and ResNet-18 at K = 1..8, `vmap`, and `loop` for small K (its compile grows with
   K). Targets: >= 10x over sequential for K = 32 tiny nets, >= 1.0x for ResNet-18 at K = 8.
4. `ohl`: OHL vs its baseline vs the frozen-theta ablation through `jaxml.main`'s own
   `run_experiment` on `experiments/ohl/cifar10_resnet18.py` (bf16, K = 8, trunks of 1 epoch),
   the same schedule for all three, on the CIFAR-10 copy in `--data_dir`: test accuracy, wall
   and train time, and OHL's time over the baseline's (target <= 8.5x for K = 8).

Data: parts 1-3 use synthetic uint8 images (speed does not depend on pixel values); part 4 needs
real CIFAR-10. The device tool carries at most 64 MiB, so `--prepare_data` writes a stratified
subset in the same zip-of-JPEGs format (members copied byte for byte) to carry instead:

  python benchmarks/gpu_suite.py --prepare_data .data/cifar10 --train_per_class 2000
  python benchmarks/gpu_suite.py --data_dir .data/cifar10 --out /tmp/gpu_suite   # a GPU, ~7 min
  python benchmarks/gpu_suite.py --smoke --out /tmp/gpu_smoke   # every part at toy size, CPU
  python benchmarks/gpu_suite.py --parts population --models tiny --profile /tmp/trace  # profile

`--smoke` runs every part at toy size (tiny nets, a few steps, K <= 2, the OHL runs shrunk to
tiny_cnn) in under a minute on a CPU; CI runs it so the script cannot rot.
"""

import argparse
import dataclasses
import gc
import json
import os
import pathlib
import shutil
import sys
import time
import zipfile
from collections.abc import Callable

# Part 4 runs after parts 1-3 in this process: let XLA grow its GPU pool instead of taking 75 % of
# the memory up front (the default), which leaves room for every part's buffers on one card.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from benchmarks import common, population_throughput  # noqa: E402
from jaxml import config_cli, configs  # noqa: E402
from jaxml.augment import ohl_space  # noqa: E402
from jaxml.data import locate  # noqa: E402
from jaxml.errors import ConfigError  # noqa: E402
from jaxml.metrics.flops import count_flops  # noqa: E402
from jaxml.population import accepted_cpu_options  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
OHL_EXPERIMENT = ROOT / "experiments" / "ohl" / "cifar10_resnet18.py"
PARTS = ("augment", "train", "population", "ohl")
# Shares of --budget_s per part (the OHL runs are the longest: three trainings and their compiles).
SHARES = {"augment": 0.05, "train": 0.32, "population": 0.28, "ohl": 0.35}
# Peak dense bf16 FLOP/s by device kind (vendor datasheets, SXM parts; leads, not readings).
PEAK_BF16 = {"H100": 989.4e12, "H200": 989.4e12, "A100": 312e12}
CIFAR_CLASSES = 10


@dataclasses.dataclass
class Sizes:
  """Every size the suite uses; `FULL` for a GPU window, `SMOKE` for a CPU in seconds."""

  augment_batch: int
  train_models: tuple  # (registry name, fields, image side)
  train_configs: tuple  # (model index, dtype, batch), in priority order
  pop_models: tuple  # (population_throughput model name, Ks for vmap, Ks for loop)
  window_s: float  # minimum seconds per timed window
  ohl_overrides: dict
  ohl_smoke: bool


FULL = Sizes(
  augment_batch=4096,
  train_models=(("resnet18", {}, 32), ("resnet50", {}, 32)),
  train_configs=(
    (0, "bfloat16", 256),
    (0, "bfloat16", 1024),
    (1, "bfloat16", 256),
    (0, "float32", 256),
    (1, "bfloat16", 1024),
    (1, "float32", 256),
    (0, "float32", 1024),
    (1, "float32", 1024),
  ),
  # ResNet-18 first: its K = 8 target must not be the one the budget cuts.
  pop_models=(("resnet18", (1, 8), (8,)), ("tiny", (1, 8, 32, 128), (8,))),
  window_s=0.5,
  ohl_overrides={
    "model.dtype": "bfloat16",
    "num_epochs": 4.0,
    "data.val_size": 2000,
    "eval_batch_size": 1000,
    "progress": False,
  },
  ohl_smoke=False,
)
SMOKE = Sizes(
  augment_batch=64,
  train_models=(("tiny_cnn", {"width": 4}, 8),),
  train_configs=((0, "bfloat16", 8),),
  pop_models=(("quick", (2,), (2,)),),
  window_s=0.0,
  ohl_overrides={
    "num_steps": 4,
    "data.val_size": 20,
    "data.resolution": 8,
    "batch_size": 8,
    "eval_batch_size": 20,
    "population.size": 2,
    "population.fast_compile": True,
    "progress": False,
  },
  ohl_smoke=True,
)


class Suite:
  """The records of every part, rewritten to `<out>/gpu_suite.{json,md}` after each one."""

  def __init__(self, args):
    self.args, self.out = args, pathlib.Path(args.out)
    self.sizes = SMOKE if args.smoke else FULL
    self.env = common.environment()
    self.peak = peak_flops(self.env["device"], args.peak_tflops)
    self.records = {p: [] for p in PARTS}
    self.notes: list[str] = []
    self.part_deadline = 0.0

  def start_part(self, part: str) -> None:
    self.part_deadline = time.perf_counter() + SHARES[part] * self.args.budget_s
    print(f"== {part} (budget {SHARES[part] * self.args.budget_s:.0f} s)", flush=True)

  def over_budget(self, part: str, what: str) -> bool:
    if time.perf_counter() < self.part_deadline:
      return False
    self.note(f"{part}: {what} skipped (the part's share of --budget_s was spent)")
    return True

  def wanted(self, model: str) -> bool:
    return not self.args.models or model in common.str_list(self.args.models)

  def note(self, text: str) -> None:
    print(f"note: {text}", flush=True)
    self.notes.append(text)

  def add(self, part: str, record: dict) -> None:
    self.records[part].append(record)
    self.write()

  def write(self) -> None:
    self.out.mkdir(parents=True, exist_ok=True)
    payload = {
      "benchmark": "gpu_suite",
      "argv": self.args.argv,
      "smoke": self.args.smoke,
      "peak_bf16_flops": self.peak,
      **self.env,
      "notes": self.notes,
      "records": self.records,
    }
    (self.out / "gpu_suite.json").write_text(json.dumps(payload, indent=2) + "\n")
    (self.out / "gpu_suite.md").write_text(markdown(payload))


def peak_flops(device: str, override_tflops: float) -> float | None:
  if override_tflops > 0:
    return override_tflops * 1e12
  return next((v for k, v in PEAK_BF16.items() if k in device), None)


def run_augment(suite: Suite) -> None:
  """OHL augmentation exactly as the train step calls it, jitted alone, batch `augment_batch`."""
  from jaxml.methods import ohl

  n = suite.sizes.augment_batch
  images, _ = common.synthetic_data(n, 32)
  x = jax.device_put(jnp.asarray(images))
  key = jax.random.key(0)
  # A non-uniform p_theta (what a learned policy looks like) over the 1,296 pairs.
  shared = {"logits": jax.random.normal(key, ohl.POLICY.init_params().shape)}
  aux = {"counts": ohl.POLICY.zero_stats()}
  # --smoke: XLA:CPU without its optimisation passes (the 36-way op switch compiles slowly).
  options = accepted_cpu_options() if suite.args.smoke and jax.default_backend() == "cpu" else None
  augment = jax.jit(lambda k, x: ohl.augment_fn(k, x, {}, shared, aux), compiler_options=options)
  t0 = time.perf_counter()
  jax.block_until_ready(augment(key, x))
  compile_s = time.perf_counter() - t0
  windows = []
  for w in range(3):
    steps, t0 = 0, time.perf_counter()
    while steps < 3 or time.perf_counter() - t0 < suite.sizes.window_s:
      jax.block_until_ready(augment(jax.random.fold_in(key, 100 * w + steps), x))
      steps += 1
    windows.append((time.perf_counter() - t0) / steps)
  step_s = common.median(windows)
  suite.add(
    "augment",
    {
      "batch": n,
      "pairs": ohl_space.NUM_PAIRS,
      "img_per_s": round(n / step_s, 1),
      "batch_ms": round(1e3 * step_s, 3),
      "compile_s": round(compile_s, 2),
    },
  )


def run_train(suite: Suite) -> None:
  """Train-step img/s and MFU per (model, dtype, batch), in priority order."""
  for model_index, dtype, batch in suite.sizes.train_configs:
    name, fields, image = suite.sizes.train_models[model_index]
    if not suite.wanted(name):
      continue
    if suite.over_budget("train", f"{name} {dtype} batch {batch}"):
      continue
    # Full XLA passes even in --smoke: `count_flops` traces the step, and jax refuses a jit
    # with compiler options (`fast_compile`) nested in that trace.
    stepper = common.population_setup(
      name, k=1, mapping="auto", batch=batch, image=image, dtype=dtype, **fields
    )
    stepper.run(1)  # warm-up
    windows = [common.timed_window(stepper, 3, suite.sizes.window_s) for _ in range(3)]
    step_s = common.median(w[0] for w in windows)
    flops = count_flops(
      stepper.engine.train_step, stepper.state, stepper.engine.step_inputs(stepper.hparams, {}, 0)
    )
    achieved = flops / step_s
    suite.add(
      "train",
      {
        "model": name,
        "dtype": dtype,
        "batch": batch,
        "img_per_s": round(batch / step_s, 1),
        "step_ms": round(1e3 * step_s, 3),
        "compile_s": round(stepper.compile_s, 2),
        "gflop_per_img": significant(flops / batch / 1e9),
        "tflop_per_s": significant(achieved / 1e12),
        "mfu": significant(achieved / suite.peak) if suite.peak else None,
      },
    )
    r = suite.records["train"][-1]
    print(f"  {name} {dtype} b{batch}: {r['img_per_s']:,.0f} img/s, MFU {r['mfu']}", flush=True)
    del stepper
    gc.collect()


def run_population(suite: Suite) -> None:
  """K copies in one step vs K sequential steps, per model, K and mapping."""
  args = argparse.Namespace(batch=0, dtype="float32", steps=1, seconds=suite.sizes.window_s)
  args.windows = 3
  auto = population_throughput.resolve_mapping("auto", suite.env["backend"])
  for name, vmap_ks, loop_ks in suite.sizes.pop_models:
    if not suite.wanted(name):
      continue
    seq = None
    for k in sorted(set(vmap_ks) | set(loop_ks)):
      mappings = [m for m, ks in (("vmap", vmap_ks), ("loop", loop_ks)) if k in ks]
      if suite.over_budget("population", f"{name} K={k} {'/'.join(mappings)}"):
        continue
      if seq is None:
        seq = population_throughput.model_setup(name, args)[3](1, "loop")
        seq.run(1)
      records, notes = population_throughput.measure_k(name, k, mappings, seq, args, {}, auto)
      for r in records:
        keep = ("model", "k", "mapping", "img_per_s", "sequential_img_per_s", "ratio")
        suite.add("population", {key: r[key] for key in keep} | {"compile_s": r["compile_s"]})
      for n in notes:
        suite.note(n)
      gc.collect()


def set_path(config, dotted: str, value) -> None:
  *parents, leaf = dotted.split(".")
  for p in parents:
    config = config[p]
  config[leaf] = value


def ohl_config(variant: str, overrides: dict, smoke: bool):
  """The OHL experiment's `variant` ('' | 'baseline' | 'frozen') with the suite's overrides; the
  OHL-only keys (trunk length) go to the two OHL runs only."""
  config = config_cli.load_config_file(f"{OHL_EXPERIMENT}:{variant}")
  if smoke:  # ResNet-18 is minutes per step on a CPU: the plumbing is what the smoke run checks
    config.model = configs.default_model_config("tiny_cnn")
    config.model.width = 4
  for key, value in overrides.items():
    set_path(config, key, value)
  if config.method == "ohl":
    if smoke:
      config.ohl.update(trunk_steps=2, trunk_epochs=0.0)
    else:
      config.ohl.update(trunk_epochs=1.0, trunk_steps=0)
  return config


def run_ohl(suite: Suite) -> None:
  """OHL, its baseline and the frozen ablation on one schedule, via `jaxml.main.run_experiment`."""
  from jaxml.main import run_experiment

  # --data_dir as given (any format the loader reads), else a complete zip copy found by default.
  data_dir = suite.args.data_dir or locate.find_dataset_dir("cifar10", ("train.zip", "test.zip"))
  if data_dir is None:
    suite.note("ohl: skipped, no CIFAR-10 copy found (set --data_dir)")
    return
  overrides = {**suite.sizes.ohl_overrides, "data.dir": str(data_dir)}
  overrides["data.cache_dir"] = str(suite.out / "data_cache")
  for variant in ("baseline", "", "frozen"):
    label = variant or "ohl"
    if suite.over_budget("ohl", f"the {label} run"):
      continue
    workdir = suite.out / "runs" / label
    shutil.rmtree(workdir, ignore_errors=True)  # a fresh run each time, never a resume
    config = ohl_config(variant, overrides, suite.sizes.ohl_smoke)
    t0 = time.perf_counter()
    summary = run_experiment(config, str(workdir))
    wall = time.perf_counter() - t0
    shutil.rmtree(workdir, ignore_errors=True)  # checkpoints: GBs for K = 8 ResNet-18s
    suite.add(
      "ohl",
      {
        "run": label,
        "copies": int(config.population.size) if config.method == "ohl" else 1,
        "test_accuracy": round(summary["test_accuracy"], 4),
        "wall_s": round(wall, 1),
        "train_s": round(summary["train_time_s"], 1),
        "img_per_s": round(summary["images_per_s"], 1),
        "command": command(variant, overrides),
      },
    )
    print(f"  {label}: test {summary['test_accuracy']}, wall {wall:.0f} s", flush=True)
    jax.clear_caches()
    gc.collect()
  base = [r for r in suite.records["ohl"] if r["run"] == "baseline"]
  if base:
    for r in suite.records["ohl"]:
      r["wall_over_baseline"] = round(r["wall_s"] / base[0]["wall_s"], 2)
      r["train_over_baseline"] = round(r["train_s"] / base[0]["train_s"], 2)
    suite.write()


def command(variant: str, overrides: dict) -> str:
  flags = " ".join(f"--config.{k}={v}" for k, v in overrides.items() if k != "data.cache_dir")
  config = OHL_EXPERIMENT.relative_to(ROOT)
  return f"python -m jaxml.main --config {config}{':' + variant if variant else ''} {flags}"


def markdown(payload: dict) -> str:
  """The suite's tables, GitHub markdown."""
  rec = payload["records"]
  lines = [
    f"device: {payload['device']} ({payload['backend']}), jax {payload['jax_version']}, "
    f"{payload['date']}; peak bf16 {fmt(payload['peak_bf16_flops'], 1e-12)} TFLOP/s",
    "",
  ]

  def table(header, rows):
    lines.extend(
      "| " + " | ".join(str(v) for v in row) + " |"
      for row in (header, ["---"] * len(header), *rows)
    )
    lines.append("")

  table(
    ["augment batch", "img/s", "ms / batch", "compile s"],
    [[r["batch"], f"{r['img_per_s']:,.0f}", r["batch_ms"], r["compile_s"]] for r in rec["augment"]],
  )
  table(
    ["model", "dtype", "batch", "img/s", "step ms", "GFLOP/img", "TFLOP/s", "MFU", "compile s"],
    [
      [r["model"], r["dtype"], r["batch"], f"{r['img_per_s']:,.0f}", r["step_ms"],
       r["gflop_per_img"], r["tflop_per_s"], fmt(r["mfu"], 100, "%"), r["compile_s"]]
      for r in rec["train"]
    ],
  )  # fmt: skip
  table(
    ["model", "K", "mapping", "img/s", "sequential img/s", "ratio", "compile s"],
    [
      [r["model"], r["k"], r["mapping"], f"{r['img_per_s']:,.0f}",
       f"{r['sequential_img_per_s']:,.0f}", f"{r['ratio']:.2f}", r["compile_s"]]
      for r in rec["population"]
    ],
  )  # fmt: skip
  table(
    ["run", "copies", "test acc", "wall s", "train s", "wall / baseline", "train / baseline"],
    [
      [r["run"], r["copies"], r["test_accuracy"], r["wall_s"], r["train_s"],
       r.get("wall_over_baseline", "-"), r.get("train_over_baseline", "-")]
      for r in rec["ohl"]
    ],
  )  # fmt: skip
  lines.extend(f"note: {n}" for n in payload["notes"])
  return "\n".join(lines) + "\n"


def significant(x: float, digits: int = 4) -> float:
  return float(f"{x:.{digits}g}")


def fmt(value, scale: float, unit: str = "") -> str:
  return "-" if value is None else f"{value * scale:.1f}{unit}"


def prepare_data(dst: str, train_per_class: int, src: str | None) -> None:
  """A stratified CIFAR-10 subset in the zip-of-JPEGs format: the first `train_per_class` train
  images of each class, and the whole test set (members copied byte for byte)."""
  found = locate.find_dataset_dir("cifar10", ("train.zip", "test.zip"), src)
  if found is None:
    raise ConfigError("--prepare_data: no CIFAR-10 zip copy found (set --data_dir)")
  dst_dir = pathlib.Path(dst)
  dst_dir.mkdir(parents=True, exist_ok=True)
  with zipfile.ZipFile(found / "train.zip") as zin:
    names = sorted(n for n in zin.namelist() if n.endswith(".jpg"))
    by_class: dict[str, list[str]] = {}
    for n in names:
      by_class.setdefault(n.split("/")[0], []).append(n)
    with zipfile.ZipFile(dst_dir / "train.zip", "w", zipfile.ZIP_STORED) as zout:
      for members in by_class.values():
        for n in members[:train_per_class]:
          zout.writestr(zin.getinfo(n), zin.read(n))
  shutil.copyfile(found / "test.zip", dst_dir / "test.zip")
  print(f"wrote {dst_dir}: {train_per_class} train images per class, the full test set")


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="/tmp/gpu_suite", help="folder for gpu_suite.json / .md")
  parser.add_argument("--parts", default=",".join(PARTS), help=f"from {', '.join(PARTS)}")
  parser.add_argument("--models", default="", help="only these train/population models")
  parser.add_argument("--smoke", action="store_true", help="every part at toy size (CPU, CI)")
  parser.add_argument("--budget_s", type=float, default=0.0, help="time for all parts (0: auto)")
  parser.add_argument("--data_dir", default=None, help="CIFAR-10 zip copy for the OHL part")
  parser.add_argument("--peak_tflops", type=float, default=0.0, help="peak bf16 (0: by device)")
  parser.add_argument("--prepare_data", default=None, help="write a CIFAR-10 subset here, exit")
  parser.add_argument("--train_per_class", type=int, default=2000, help="with --prepare_data")
  parser.add_argument("--compile_cache", default="", help="JAX persistent compilation cache dir")
  parser.add_argument("--profile", default="", help="write a jax.profiler trace of the run here")
  args = parser.parse_args(argv)
  args.argv = sys.argv[1:] if argv is None else list(argv)
  args.parts = common.str_list(args.parts)
  unknown = [p for p in args.parts if p not in PARTS]
  if unknown:
    raise ConfigError(f"--parts: unknown part(s) {unknown}; valid: {', '.join(PARTS)}")
  if args.budget_s < 0 or args.train_per_class < 1:
    raise ConfigError("--budget_s must be >= 0 and --train_per_class >= 1")
  if args.budget_s == 0:
    args.budget_s = 600.0 if args.smoke else 420.0  # the smoke run must reach every branch
  return args


RUNNERS: dict[str, Callable[[Suite], None]] = {
  "augment": run_augment,
  "train": run_train,
  "population": run_population,
  "ohl": run_ohl,
}


def main(argv=None) -> dict:
  args = parse_args(argv)
  if args.prepare_data:
    prepare_data(args.prepare_data, args.train_per_class, args.data_dir)
    return {}
  if args.compile_cache:  # a rerun on the same machine loads its compiles instead of redoing them
    jax.config.update("jax_compilation_cache_dir", args.compile_cache)
  suite = Suite(args)
  print(f"device: {suite.env['device']} ({suite.env['backend']}), jax {suite.env['jax_version']}")
  if args.profile:  # for TensorBoard's profile plugin / Perfetto: where a missed target's time goes
    jax.profiler.start_trace(args.profile)
  for part in args.parts:
    suite.start_part(part)
    try:
      RUNNERS[part](suite)
    except Exception as e:  # one broken part must not lose the others' measurements
      if args.smoke:
        raise
      suite.note(f"{part}: failed with {type(e).__name__}: {str(e).splitlines()[0][:300]}")
  if args.profile:
    jax.profiler.stop_trace()
  suite.write()
  print((suite.out / "gpu_suite.md").read_text())
  return json.loads((suite.out / "gpu_suite.json").read_text())


if __name__ == "__main__":
  try:
    main()
  except ConfigError as e:
    sys.exit(f"gpu_suite: error: {e}")
