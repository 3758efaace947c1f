"""Images/s of the baseline train step on the current device (ResNet-20 / ResNet-18, fp32 / bf16).

What is timed is what `python -m jaxml.main` runs for plain training: `training.make_train_step`
(default crop + flip augmentation, SGD + Nesterov + weight decay, cosine schedule) mapped by a
K = 1 `Population` (mapping 'auto'), state donated, on synthetic uint8 CIFAR-shaped data resident
on device. bf16 means model dtype bfloat16 (activations and convolutions; parameters, optimizer
and loss stay float32). Compile time (ahead-of-time trace + lower + compile) is reported apart
from the steady state: the median over `--windows` timed windows after one warm-up step, each
window >= `--steps` steps and >= `--seconds` s, blocked with `jax.block_until_ready`.

  python benchmarks/train_throughput.py --out /tmp/train_throughput.json
  python benchmarks/train_throughput.py --models resnet18 --batches 256 --dtypes bfloat16 \
      --steps 3 --windows 3 --out /tmp/r18_bf16.json
  python benchmarks/train_throughput.py --quick --out /tmp/quick.json   # seconds, for tests
"""

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from benchmarks import common  # noqa: E402
from jaxml.errors import ConfigError  # noqa: E402
from jaxml.models import DTYPES, MODEL_NAMES, SPACE_MODELS  # noqa: E402

RECORD_KEYS = (
  "model",
  "batch",
  "dtype",
  "img_per_s",
  "step_ms",
  "compile_s",
  "device",
  "backend",
  "jax_version",
  "date",
)


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--models", default="resnet20,resnet18", help="comma-separated names")
  parser.add_argument("--batches", default="128,256", help="comma-separated batch sizes")
  parser.add_argument(
    "--dtypes", default=None, help="float32 and/or bfloat16 (default both; float32 with --quick)"
  )
  common.add_timing_args(parser)
  parser.add_argument("--out", default=None, help="write the records as JSON here")
  parser.add_argument(
    "--quick",
    action="store_true",
    help="smoke run in seconds (tiny_cnn width 4, batch 8, 1 step, 1 window), for tests",
  )
  args = parser.parse_args(argv)
  if args.quick:  # sizes only: --dtypes still applies
    args.models, args.batches = "tiny_cnn", "8"
    args.steps, args.seconds, args.windows = 1, 0.0, 1
  if args.dtypes is None:
    args.dtypes = "float32" if args.quick else "float32,bfloat16"
  args.models, args.batches = common.str_list(args.models), common.int_list(args.batches)
  args.dtypes = common.str_list(args.dtypes)
  for name in args.models:
    # Space networks need a per-copy encoding: benchmarks/architecture_builds.py times them.
    valid = [m for m in MODEL_NAMES if m not in SPACE_MODELS]
    if name not in valid:
      raise ConfigError(f"--models: unknown model {name!r}; valid: {', '.join(valid)}")
  for dtype in args.dtypes:
    if dtype not in DTYPES:
      raise ConfigError(f"--dtypes: unknown dtype {dtype!r}; valid: {', '.join(DTYPES)}")
  if args.steps < 1 or args.windows < 1 or not args.batches or min(args.batches) < 1:
    raise ConfigError("--steps, --windows and every --batches value must be >= 1")
  return args


def measure(model: str, batch: int, dtype: str, args, env: dict) -> dict:
  """One record: compile, one warm-up step, then the median of the timed windows."""
  # --quick: a smoke run for tests, compiled without XLA:CPU's optimisation passes.
  kwargs = {"width": 4, "fast_compile": True} if args.quick else {}
  stepper = common.population_setup(model, k=1, mapping="auto", batch=batch, dtype=dtype, **kwargs)
  stepper.run(1)  # warm-up: first execution (allocations, thread pools)
  windows = [common.timed_window(stepper, args.steps, args.seconds) for _ in range(args.windows)]
  step_s = common.median(w[0] for w in windows)
  cpu_s = common.median(w[1] for w in windows)
  return {
    "model": model,
    "batch": batch,
    "dtype": dtype,
    "img_per_s": round(batch / step_s, 2),
    "step_ms": round(1e3 * step_s, 2),
    "compile_s": round(stepper.compile_s, 2),
    # Per second of this process's CPU time (all its threads): less sensitive to other load.
    "img_per_cpu_s": round(batch / cpu_s, 2),
    "timed_steps": sum(w[2] for w in windows),
    "mapping": stepper.pop.mapping,
    **env,
  }


def main(argv=None) -> dict:
  args = parse_args(argv)
  env = common.environment()
  print(
    f"device: {env['device']} ({env['backend']}), jax {env['jax_version']}, {env['date']}, "
    f"load avg {env['load_avg']}",
    flush=True,
  )
  records = []
  for model in args.models:
    for dtype in args.dtypes:
      for batch in args.batches:
        records.append(measure(model, batch, dtype, args, env))
        r = records[-1]
        print(
          f"  {model} {dtype} batch {batch}: {r['img_per_s']:.1f} img/s, "
          f"compile {r['compile_s']:.1f} s",
          flush=True,
        )
  env_after = common.environment()
  header = ["model", "dtype", "batch", "img/s", "step ms", "compile s", "img/CPU-s"]
  rows = [
    [
      r["model"],
      r["dtype"],
      r["batch"],
      f"{r['img_per_s']:,.1f}",
      f"{r['step_ms']:,.1f}",
      f"{r['compile_s']:.1f}",
      f"{r['img_per_cpu_s']:,.1f}",
    ]
    for r in records
  ]
  common.print_table(header, rows)
  print(f"load avg before / after: {env['load_avg']} / {env_after['load_avg']}")
  payload = {
    "benchmark": "train_throughput",
    "argv": sys.argv[1:] if argv is None else list(argv),
    "load_avg_before": env["load_avg"],
    "load_avg_after": env_after["load_avg"],
    "records": records,
  }
  common.write_json(args.out, payload)
  return payload


if __name__ == "__main__":
  main()
