"""The step-time cost of bounding asynchronous dispatch in `experiment.train_steps`.

`train_steps` waits for each step before dispatching the next (`max_ahead=0`), so a stop signal
waits for one step at most. Unbounded, the host queues steps ahead of the device and overlaps
its dispatch work (flattening the population pytree, launching) with the computation. This
script times the same `PopulationRun` stepping with max_ahead 0, 1 and unbounded, interleaved
in rounds (so load from other processes hits every setting alike), and prints the median
seconds per step and each setting's cost relative to unbounded dispatch.

  python benchmarks/dispatch_bound.py --config experiments/ohl/cifar10_resnet18.py:smoke
  python benchmarks/dispatch_bound.py --config experiments/baselines/cifar10_resnet20.py:smoke \
      --override batch_size=128 --steps 20

Writes JSON with `--out`. Needs CIFAR-10 where `jaxml.data` finds it (README "Where data is
looked for").
"""

import argparse
import json
import pathlib
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from benchmarks.common import environment  # noqa: E402
from jaxml import config_cli, experiment  # noqa: E402

SETTINGS = {"0 (default)": 0, "1": 1, "unbounded": 10**9}


def parse_value(text: str):
  for cast in (int, float):
    try:
      return cast(text)
    except ValueError:
      pass
  return text


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="experiments/ohl/cifar10_resnet18.py:smoke")
  parser.add_argument("--override", action="append", default=[], help="key=value (dotted)")
  parser.add_argument("--steps", type=int, default=30, help="steps per timed window")
  parser.add_argument("--rounds", type=int, default=5, help="windows per setting, interleaved")
  parser.add_argument("--out", default="")
  args = parser.parse_args(argv)

  config = config_cli.load_config_file(args.config)
  for item in args.override:
    key, value = item.split("=", 1)
    node = config
    *parents, leaf = key.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = parse_value(value)
  config.progress = False
  config.num_steps = args.steps * (args.rounds * len(SETTINGS) + 1) + 1
  with tempfile.TemporaryDirectory() as workdir:
    run = experiment.PopulationRun(config, workdir)
    pop = run.engine.init_population()
    hparams = run.pop.put_copies({})
    pop, step = experiment.train_steps(run, pop, hparams, {}, 0, 1)  # compile
    times = {name: [] for name in SETTINGS}
    for _ in range(args.rounds):
      for name, ahead in SETTINGS.items():
        t0 = time.perf_counter()
        pop, step = experiment.train_steps(
          run, pop, hparams, {}, step, step + args.steps, max_ahead=ahead
        )
        times[name].append((time.perf_counter() - t0) / args.steps)
    run.close()
  base = statistics.median(times["unbounded"])
  rows = {
    name: {
      "s_per_step_median": statistics.median(t),
      "s_per_step_all": t,
      "cost_vs_unbounded": statistics.median(t) / base - 1.0,
    }
    for name, t in times.items()
  }
  print(f"{args.config} {' '.join(args.override)}: {args.steps} steps x {args.rounds} rounds")
  print(f"{'max_ahead':>12} {'s/step (median)':>16} {'cost vs unbounded':>18}")
  for name, r in rows.items():
    print(f"{name:>12} {r['s_per_step_median']:16.4f} {100 * r['cost_vs_unbounded']:17.1f}%")
  record = {
    "config": args.config,
    "overrides": args.override,
    "steps": args.steps,
    "rounds": args.rounds,
    "rows": rows,
    "environment": environment(),
  }
  if args.out:
    with open(args.out, "w") as f:
      json.dump(record, f, indent=2, default=lambda x: float(np.asarray(x)))
  return record


if __name__ == "__main__":
  sys.exit(0 if main() else 1)
