"""Timing of the tabular NAS searches: many seeds x many queries in one jitted vmapped call.

Headline: regularized evolution, 1,000 seeds x 500 queries on NAS-Bench-201 (target <= 10 s on
a 2-core CPU, compile time excluded and reported separately). Compile time is measured with
ahead-of-time `jit(...).lower(...).compile()`; run time is the median of `--repeats` calls of the
compiled program (each blocked until the results are ready).

  python benchmarks/tabular_search.py --out /tmp/tabular_search.json
  python benchmarks/tabular_search.py --methods rea,random,reinforce,spos --seeds 1000 \
      --queries 500 --out /tmp/tabular_search_all.json

Hyper-parameters are those of experiments/tabular/nb201_cifar10.py. The objective is the table's
200-epoch CIFAR-10 test accuracy; timings do not depend on the values, but the real table is
used when found (data search order: --data_dir, $JAXML_DATA_DIR, ../shared/data).
"""

import argparse
import json
import pathlib
import platform
import statistics
import sys
import time

import jax
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from jaxml import config_cli  # noqa: E402
from jaxml.methods import tabular  # noqa: E402
from jaxml.nasbench import nb201  # noqa: E402
from jaxml.search import driver  # noqa: E402

CONFIG = pathlib.Path(__file__).resolve().parents[1] / "experiments/tabular/nb201_cifar10.py"


def bench(name, config, evaluate, seeds, queries, repeats):
  keys = driver.seed_keys(config.seed, seeds, stream=list(tabular.SEARCHES).index(name))
  hp = tabular.hparams(config, name)
  t0 = time.perf_counter()
  compiled = driver.compile_seeds(tabular.algorithm(name, queries, **hp), keys, evaluate, queries)
  compile_s = time.perf_counter() - t0
  runs = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    result = jax.block_until_ready(compiled(keys, evaluate))
    runs.append(time.perf_counter() - t0)
  _, best = result.best_after(queries)
  return {
    "method": name,
    "seeds": seeds,
    "queries": queries,
    "hparams": hp,
    "compile_s": compile_s,
    "run_s_median": statistics.median(runs),
    "run_s_all": runs,
    "queries_per_s": seeds * queries / statistics.median(runs),
    "mean_best": float(np.mean(best)),
  }


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--methods", default="rea", help="comma-separated: rea,random,reinforce,spos")
  p.add_argument("--seeds", type=int, default=1000)
  p.add_argument("--queries", type=int, default=500)
  p.add_argument("--repeats", type=int, default=3)
  p.add_argument("--data_dir", default="")
  p.add_argument("--out", default="", help="write the results as JSON here")
  args = p.parse_args(argv)
  config = config_cli.load_config_file(str(CONFIG))
  config.methods = tuple(args.methods.split(","))
  config.queries = args.queries
  config.num_seeds = args.seeds
  tabular.validate_config(config)
  table = nb201.load(args.data_dir or None)
  evaluate = driver.nb201_evaluator(table, "cifar10")
  rows = [
    bench(m, config, evaluate, args.seeds, args.queries, args.repeats) for m in config.methods
  ]
  print(
    f"{'method':<10} {'seeds':>6} {'queries':>7} {'compile s':>10} {'run s':>8} {'queries/s':>12}"
  )
  for r in rows:
    print(
      f"{r['method']:<10} {r['seeds']:>6} {r['queries']:>7} {r['compile_s']:>10.2f} "
      f"{r['run_s_median']:>8.3f} {r['queries_per_s']:>12.3g}"
    )
  out = {
    "benchmark": "tabular_search",
    "device": str(jax.devices()[0]),
    "jax": jax.__version__,
    "python": platform.python_version(),
    "results": rows,
  }
  if args.out:
    pathlib.Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
  return out


if __name__ == "__main__":
  main()
