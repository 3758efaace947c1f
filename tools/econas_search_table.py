"""EcoNAS hierarchical search vs random search vs the zero-cost warm start, seeds x variants.

Runs (or, with --table_only, only tabulates) `experiments/econas/search_nb201.py` for every seed
and variant, one workdir per run, `ROOT/<dir>_s<seed>` (dirs: `cpu` the hierarchical search,
`cpu_random` random children on the same pools and schedule, `cpu_warm` the search started from
the synflow-best cells); finished runs are skipped, killed ones resume. Then prints, per run and
per variant (mean ± std over seeds, ddof 0):

- the found cell's NAS-Bench-201 200-epoch CIFAR-10 test accuracy (the search's answer);
- the best accuracy among all networks the search trained (what a perfect proxy would have
  picked from them) and among the stage-3 ones (the pool the answer comes from): when these are
  high and the answer is not, the proxy's ranking lost it; when they are low, the search never
  trained a good cell;
- Spearman between the proxy's val accuracy and the table's accuracy over the trainings of each
  stage (stage 1 = E epochs of the 3E schedule, stage 3 = all of it);
- trainings and wall time.

  python tools/econas_search_table.py --root runs/econas --seeds 0,1,2
  python tools/econas_search_table.py --root runs/econas --seeds 0,1,2 --table_only
"""

import argparse
import json
import pathlib
import subprocess
import sys

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from jaxml.metrics.rank import spearman  # noqa: E402
from jaxml.nasbench import nb201  # noqa: E402

EXPERIMENT = "experiments/econas/search_nb201.py"
VARIANTS = {"cpu": "cpu", "cpu_random": "cpu,random", "cpu_warm": "cpu,warm"}  # dir -> variants


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--root", required=True, help="one workdir per run below it")
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--variants", default=",".join(VARIANTS), help="of " + ", ".join(VARIANTS))
  parser.add_argument("--table_only", action="store_true", help="tabulate what is there")
  parser.add_argument("--table_dir", default="", help="NAS-Bench-201 table ('' = search)")
  args = parser.parse_args(argv)
  args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
  args.variants = [v for v in args.variants.split(",") if v.strip()]
  unknown = sorted(set(args.variants) - set(VARIANTS))
  if unknown:
    parser.error(f"unknown variants {unknown}; valid: {', '.join(VARIANTS)}")
  return args


def run_all(args) -> None:
  for seed in args.seeds:
    for name in args.variants:
      workdir = pathlib.Path(args.root) / f"{name}_s{seed}"
      if (workdir / "summary.json").exists():
        continue
      config = f"{EXPERIMENT}:{VARIANTS[name]}"
      cmd = [sys.executable, "-m", "jaxml.main", "--config", config, "--workdir", str(workdir),
             f"--config.seed={seed}", "--config.progress=False"]  # fmt: skip
      print(" ".join(cmd), flush=True)
      subprocess.run(cmd, check=True, cwd=REPO)


def run_row(workdir: pathlib.Path, table) -> dict | None:
  """The measures of one finished search (None while it has no summary)."""
  path = workdir / "summary.json"
  if not path.exists():
    return None
  summary = json.loads(path.read_text())
  with np.load(workdir / "search.npz") as f:
    enc, stage, val = f["encoding"], f["stage"], f["val"]
  trained = stage > 0
  truth = np.full(stage.shape, np.nan)
  truth[trained] = np.asarray(table.query(enc[trained]), np.float64)
  per_stage = {}
  for s in (1, 2, 3):
    sel = stage == s
    rho = spearman(np.asarray(val[sel], np.float32), np.asarray(truth[sel], np.float32))
    per_stage[s] = float(rho) if sel.sum() >= 3 else None
  return {
    "found": summary["found_test_accuracy_nb201"],
    "best_trained": float(np.nanmax(truth)),
    "best_stage3": float(np.nanmax(np.where(stage == 3, truth, np.nan))),
    "spearman_stage": per_stage,
    "trainings": summary["trainings"],
    "networks": summary["networks_trained"],
    "wall_s": summary["wall_time_s"],
    "architecture": summary["found_architecture"],
  }


def fmt(v, spec=".2f") -> str:
  return "-" if v is None else format(v, spec)


def mean_std(values) -> str:
  values = [v for v in values if v is not None]
  if not values:
    return "-"
  return f"{np.mean(values):.2f} ± {np.std(values):.2f}"


def tables(args) -> dict:
  table = nb201.load(args.table_dir or None)
  rows = {}
  print(
    "| variant | seed | found NB201 % | best trained % | best stage-3 % | "
    "Spearman stage 1 / 2 / 3 | trainings (networks) | wall s |"
  )
  print("| --- | --- | --- | --- | --- | --- | --- | --- |")
  for name in args.variants:
    for seed in args.seeds:
      r = run_row(pathlib.Path(args.root) / f"{name}_s{seed}", table)
      rows[(name, seed)] = r
      if r is None:
        print(f"| {name} | {seed} | unfinished | | | | | |")
        continue
      rho = " / ".join(fmt(r["spearman_stage"][s]) for s in (1, 2, 3))
      print(
        f"| {name} | {seed} | {r['found']:.2f} | {r['best_trained']:.2f} | {r['best_stage3']:.2f}"
        f" | {rho} | {r['trainings']} ({r['networks']}) | {r['wall_s']:.0f} |"
      )
  print()
  print("| variant | seeds | found NB201 % | best trained % | best stage-3 % | Spearman stage 3 |")
  print("| --- | --- | --- | --- | --- | --- |")
  for name in args.variants:
    done = [rows[(name, s)] for s in args.seeds if rows[(name, s)] is not None]
    if not done:
      continue
    print(
      f"| {name} | {len(done)} | {mean_std([r['found'] for r in done])} | "
      f"{mean_std([r['best_trained'] for r in done])} | "
      f"{mean_std([r['best_stage3'] for r in done])} | "
      f"{mean_std([r['spearman_stage'][3] for r in done])} |"
    )
  print(f"optimum of the table: {table.optimum():.2f}")
  return rows


def main(argv=None) -> dict:
  args = parse_args(argv)
  if not args.table_only:
    run_all(args)
  return tables(args)


if __name__ == "__main__":
  main()
