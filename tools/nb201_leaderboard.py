"""Every NAS-Bench-201 search in the project at its CPU size, seeds x methods, as one table.

Runs (or, with --table_only, only tabulates) one `python -m jaxml.main` per run and seed, one
workdir per run, `ROOT/<run>_s<seed>` (`--dirs run=pattern` points a run at other directories,
e.g. existing ones); runs with a finished summary.json are skipped, killed ones resume when the
same command is run again (jaxml runs resume themselves from their checkpoints). Few-shot starts
from the SPOS run of its seed (`--config.spos.init_from`), so asking for it runs SPOS first. Then
prints one markdown table, one row per method:

- the found cell's NAS-Bench-201 200-epoch CIFAR-10 test accuracy: mean ± std over the finished
  seeds (ddof 0) and per seed ('not run': no workdir; 'unfinished': a workdir without a finished
  summary.json, e.g. still running);
- the search cost per seed, in the method's own unit: table queries (tabular searches), networks
  trained (EcoNAS), cells scored (the zero-cost pick), supernet epochs (one-shot; few-shot counts
  SPOS's epochs plus its own times its 5 sub-supernets), epochs and bilevel steps (DARTS family),
  and CPU hours: the run's wall time as it records it (`wall_time_s`; tabular: compile + run of
  that search; EcoNAS warm start: plus the zero-cost scoring; zero-cost pick: that scoring alone;
  few-shot: plus its SPOS run). SPOS, few-shot and PC-NAS record the supernet training only, not
  the scoring / evolution after it (about 10 of 67 min for SPOS in RESULTS.md). Wall hours
  count as CPU hours only between runs under the same load and cores (the project's CPU runs so
  far: one core each of a 2-core machine);
- the published NAS-Bench-201 CIFAR-10 test accuracy of the same method, only from
  ../shared/REFERENCES.md (section 7d quotes the NB201 paper's Table 5); 'not published' where
  it has none. The published searches run at full size (and non-sharing ones select on 12-epoch
  val accuracy), so a gap is expected; the row shows where each method lands at CPU size.

The tabular searches (RS, REA, REINFORCE, SPOS evolution on the table; one run holds all four)
run one seed per leaderboard seed (`--config.num_seeds=1 --config.seed=S`), so their spread is
over the same 3 seeds as every other row; RESULTS.md has their 1,000-seed means. They select on
the table's test accuracy itself (noise-free), the NB201 paper's on 12-epoch val accuracy: their
published numbers are shown for reference, not like-for-like. The zero-cost pick is read from
the EcoNAS warm-start run of the same seed (no run of its own): the cell that run's zero-cost
measure scored highest of its random pool, before any training (NASWOT-style search; its
published numbers are not in REFERENCES.md). REA's published number is in
REFERENCES.md from memory only ([M]) and is flagged so. Few-shot's `cpu,fewshot` trains 5
sub-supernets for 2 epochs each after SPOS's 30: 40 supernet epochs in all.

  python tools/nb201_leaderboard.py --root runs/lb
  python tools/nb201_leaderboard.py --root runs/lb --seeds 0,1,2 --methods darts,gdas
  python tools/nb201_leaderboard.py --root runs/lb --table_only
  python tools/nb201_leaderboard.py --root runs/lb --table_only \\
    --dirs econas=runs/search/cpu_s{seed},darts=runs/darts/cpu_s{seed}
"""

import argparse
import functools
import json
import math
import pathlib
import subprocess
import sys

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from jaxml import rundir  # noqa: E402
from jaxml.errors import DataError  # noqa: E402

# run -> (config with its CPU-size variants, extra arguments). The tabular config has no
# `progress` key (no bar to hide), so the flag is added per run, not for all.
TABULAR = "experiments/tabular/nb201_cifar10.py"
ECONAS = "experiments/econas/search_nb201.py"
SPOS = "experiments/spos/nb201_cifar10.py"
DARTS = "experiments/darts/nb201_cifar10.py"
QUIET = ["--config.progress=False"]
RUNS = {
  "tabular": (TABULAR, ["--config.num_seeds=1"]),
  "econas": (f"{ECONAS}:cpu", QUIET),
  "econas_random": (f"{ECONAS}:cpu,random", QUIET),
  "econas_warm": (f"{ECONAS}:cpu,warm", QUIET),
  "spos": (f"{SPOS}:cpu", QUIET),
  "fewshot": (f"{SPOS}:cpu,fewshot", QUIET),  # + init_from: the SPOS run of the same seed
  "pcnas": ("experiments/pcnas/nb201_cifar10.py:cpu", QUIET),
  "darts": (f"{DARTS}:cpu", QUIET),
  "darts_2nd": (f"{DARTS}:cpu,second_order", QUIET),
  "gdas": (f"{DARTS}:cpu,gdas", QUIET),
  "darts_minus": (f"{DARTS}:cpu,darts_minus", QUIET),
}
NEEDS = {"fewshot": "spos"}  # run -> the run of the same seed it starts from (listed before it)

OPTIMUM_KEYS = ("optimum", "nb201_optimum", "table_optimum")  # tabular, EcoNAS, the others


def tabular_row(name: str):
  """The reader of search `name` of a tabular run: it must hold one seed, or its mean_test is a
  mean over seeds, not the found cell of this one."""

  def read(s: dict, wd: pathlib.Path) -> dict:
    if s["num_seeds"] != 1:
      raise ValueError(f"num_seeds={s['num_seeds']}, not 1")
    m = s[name]
    return {
      "acc": m["mean_test"],
      "wall_s": m["compile_s"] + m["wall_s"],
      "cost": {"table queries": m["queries"]},
    }

  return read


def econas_row(s: dict, wd: pathlib.Path) -> dict:
  warm = (s.get("warm_start") or {}).get("wall_time_s", 0.0)  # scoring runs before the timer
  return {
    "acc": s["found_test_accuracy_nb201"],
    "wall_s": s["wall_time_s"] + warm,
    "cost": {"networks trained": s["networks_trained"], "trainings": s["trainings"]},
  }


@functools.cache
def nb201_table(table_dir: str):
  from jaxml.nasbench import nb201

  return nb201.load(table_dir or None)


def zero_cost_row(s: dict, wd: pathlib.Path) -> dict:
  """The zero-cost pick: the best-scored cell of the EcoNAS warm start's random pool (its first
  pick, `warm_start.json`), looked up in the table the run used; cost = that scoring alone."""
  warm = s["warm_start"]
  table_dir = json.loads((wd / "config.json").read_text())["econas"]["table_dir"]
  return {
    "acc": nb201_table(table_dir).query_string(warm["picked"][0]),
    "wall_s": warm["wall_time_s"],
    "cost": {f"cells scored ({warm['measure']})": warm["pool"]},
  }


def spos_row(s: dict, wd: pathlib.Path) -> dict:
  # trunk-loop `epochs` are per copy; the copies are separate (sub-)supernets
  epochs = s["epochs"] * s["population_size"]
  return {
    "acc": s["search"]["best_true_accuracy_mean"],
    "wall_s": s["wall_time_s"],
    "cost": {"supernet epochs": epochs},
  }


def fewshot_row(s: dict, wd: pathlib.Path) -> dict:
  """SPOS's row plus the cost of the SPOS run it started from (its config's init_from, so an
  override of the SPOS directory is followed); NaN costs when that run is gone."""
  row = spos_row(s, wd)
  source = json.loads((wd / "config.json").read_text())["spos"]["init_from"]
  source = REPO / source if source else None  # relative: to the repository, where runs start
  before = rundir.finished_summary(source) if source else None
  spos = spos_row(before, source) if before else {"wall_s": math.nan, "cost": {}}
  row["wall_s"] += spos["wall_s"]
  row["cost"]["supernet epochs"] += spos["cost"].get("supernet epochs", math.nan)
  return row


def pcnas_row(s: dict, wd: pathlib.Path) -> dict:
  return {
    "acc": s["returned_true_accuracy"],
    "wall_s": s["wall_time_s"],
    "cost": {"supernet epochs": s["epochs"]},
  }


def darts_row(s: dict, wd: pathlib.Path) -> dict:
  # the derived cell (argmax of alpha without `none`) after the last epoch; one copy per seed
  return {
    "acc": s["final_true_accuracy_mean"],
    "wall_s": s["wall_time_s"],
    "cost": {"epochs": s["epochs"], "bilevel steps": s["steps"]},
  }


T5 = "NB201 paper Table 5, REFERENCES.md §7d"
NOT = ("not published", "")
# method -> (label, run, reader, (published CIFAR-10 test %, source))
METHODS = {
  "rs": ("RS on the table", "tabular", tabular_row("random"), ("93.70 ± 0.36", T5)),
  # REFERENCES.md has REA only from memory ([M]: "do not build a test on it"): shown, flagged
  "rea": (
    "REA on the table",
    "tabular",
    tabular_row("rea"),
    ("93.92 ± 0.30", T5 + ", [M]: from memory, unverified"),
  ),
  "reinforce": (
    "REINFORCE on the table",
    "tabular",
    tabular_row("reinforce"),
    ("93.85 ± 0.37", T5),
  ),
  "spos_ea_table": ("SPOS evolution on the table", "tabular", tabular_row("spos"), NOT),
  "econas": ("EcoNAS hierarchical", "econas", econas_row, NOT),
  "econas_random": ("EcoNAS random children", "econas_random", econas_row, NOT),
  "zero_cost": (
    "zero-cost pick (warm start's top-1)",
    "econas_warm",
    zero_cost_row,
    NOT,
  ),
  "econas_warm": ("EcoNAS + zero-cost warm start", "econas_warm", econas_row, NOT),
  "spos": ("SPOS supernet + evolution", "spos", spos_row, NOT),
  "fewshot": ("few-shot (5 sub-supernets) + evolution", "fewshot", fewshot_row, NOT),
  "pcnas": ("PC-NAS", "pcnas", pcnas_row, NOT),
  "darts": ("DARTS 1st order", "darts", darts_row, ("54.30 ± 0.00", T5 + ", DARTS-V1")),
  "darts_2nd": ("DARTS 2nd order", "darts_2nd", darts_row, ("54.30 ± 0.00", T5 + ", DARTS-V2")),
  "gdas": ("GDAS", "gdas", darts_row, ("93.61 ± 0.09", T5)),
  "darts_minus": ("DARTS-", "darts_minus", darts_row, NOT),
}
# Anchors in REFERENCES.md that are near a row without being its published search result.
NEAR = {
  "spos": "RSPS (random search on a uniform supernet, not evolution) 87.66 ± 1.69 or "
  "84.07 ± 3.61 (two versions of NB201 Table 5 circulate, REFERENCES.md §7d)",
  "fewshot": "the released few-shot supernet's top-1 of all 15,625 cells is a 92.70 cell "
  "(computed from the release, not a search result; REFERENCES.md §7a)",
}


def refuse(message: str) -> None:
  """One line on stderr and exit 2 (argparse's whole usage page would bury it)."""
  print(f"nb201_leaderboard: {message}", file=sys.stderr)
  raise SystemExit(2)


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--root", required=True, help="one workdir per run and seed below it")
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--methods", default=",".join(METHODS), help="of " + ", ".join(METHODS))
  parser.add_argument("--table_only", action="store_true", help="tabulate what is there")
  parser.add_argument(
    "--dirs", default="", help="run=pattern,... with {seed}, e.g. darts=runs/darts/cpu_s{seed}"
  )
  args = parser.parse_args(argv)
  args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
  args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
  unknown = [m for m in args.methods if m not in METHODS]
  if unknown:
    refuse(f"unknown methods {unknown}; valid: {', '.join(METHODS)}")
  dirs = {}
  for item in filter(None, (d.strip() for d in args.dirs.split(","))):
    run, _, pattern = item.partition("=")
    if run not in RUNS or "{seed}" not in pattern:
      refuse(f"--dirs {item!r}: want run=pattern with {{seed}}, run one of {', '.join(RUNS)}")
    dirs[run] = pattern
  args.dirs = dirs
  return args


def workdir(root, run: str, seed: int, dirs: dict | None = None) -> pathlib.Path:
  # Absolute: the runs start in the repository root, the table is read from the caller's cwd.
  pattern = (dirs or {}).get(run)
  path = (
    pathlib.Path(pattern.format(seed=seed)) if pattern else pathlib.Path(root) / f"{run}_s{seed}"
  )
  return path.expanduser().absolute()


def command(run: str, seed: int, root, dirs: dict | None = None) -> list:
  config, extra = RUNS[run]
  cmd = [sys.executable, "-m", "jaxml.main", "--config", config]
  cmd += ["--workdir", str(workdir(root, run, seed, dirs)), f"--config.seed={seed}", *extra]
  if run in NEEDS:
    cmd.append(f"--config.spos.init_from={workdir(root, NEEDS[run], seed, dirs)}")
  return cmd


def runs_needed(methods: list) -> list:
  """The runs behind `methods`, each once, in RUNS order (so a run's source comes first)."""
  wanted = {METHODS[m][1] for m in methods}
  wanted |= {NEEDS[r] for r in wanted if r in NEEDS}
  return [r for r in RUNS if r in wanted]


def run_all(args) -> None:
  for seed in args.seeds:  # seed-major: a stopped leaderboard has whole seeds, not whole methods
    for run in runs_needed(args.methods):
      if rundir.finished_summary(workdir(args.root, run, seed, args.dirs)) is not None:
        continue
      cmd = command(run, seed, args.root, args.dirs)
      print(" ".join(cmd), flush=True)
      subprocess.run(cmd, check=True, cwd=REPO)


def read(method: str, seed: int, args) -> dict | str:
  """The method's measures in one seed's run, or why there are none."""
  wd = workdir(args.root, METHODS[method][1], seed, args.dirs)
  summary = rundir.finished_summary(wd)
  if summary is None:
    return "unfinished" if wd.exists() else "not run"
  try:
    row = METHODS[method][2](summary, wd)
  except (KeyError, TypeError, ValueError, OSError, DataError) as e:  # another kind or version
    # of run, or (zero-cost pick) no NB201 table here to look the pick up in
    return f"unreadable ({type(e).__name__}: {e})"
  search = summary.get("search") or {}  # SPOS keeps its table look-ups in its search block
  optimum = [summary.get(k) for k in OPTIMUM_KEYS] + [search.get("table_optimum")]
  row["optimum"] = next((v for v in optimum if isinstance(v, int | float)), None)
  return row


def mean_std(values) -> str:
  return f"{np.mean(values):.2f} ± {np.std(values):.2f} (n={len(values)})"


def cost_text(rows: list) -> str:
  """The mean per seed of each cost the rows record, in their units."""
  keys = list(rows[0]["cost"])
  return ", ".join(f"{np.mean([r['cost'][k] for r in rows]):.4g} {k}" for k in keys)


def table(args) -> dict:
  results = {(m, s): read(m, s, args) for m in args.methods for s in args.seeds}
  lines = [
    f"| method | NB201 CIFAR-10 test % (mean ± std) | per seed ({', '.join(map(str, args.seeds))})"
    " | search cost per seed | CPU h per seed | published (REFERENCES.md) |",
    "| --- | --- | --- | --- | --- | --- |",
  ]
  for m in args.methods:
    label, _, _, (published, source) = METHODS[m]
    rows = [results[(m, s)] for s in args.seeds]
    done = [r for r in rows if isinstance(r, dict)]
    per_seed = ", ".join(f"{r['acc']:.2f}" if isinstance(r, dict) else r for r in rows)
    acc = mean_std([r["acc"] for r in done]) if done else "no finished seed"
    cost = cost_text(done) if done else ""
    hours = f"{np.mean([r['wall_s'] for r in done]) / 3600:.3g}" if done else ""
    pub = f"{published} ({source})" if source else published
    lines.append(f"| {label} | {acc} | {per_seed} | {cost} | {hours} | {pub} |")
  print("\n".join(lines))
  print()
  optima = [r["optimum"] for r in results.values() if isinstance(r, dict) and r["optimum"]]
  print(f"optimum of the table (NB201 CIFAR-10 200-epoch test): {optimum_text(optima)}")
  for m in args.methods:
    if m in NEAR:
      print(f"- {METHODS[m][0]}: not published; nearest in REFERENCES.md: {NEAR[m]}")
  return results


def optimum_text(optima: list) -> str:
  if optima:
    return f"{optima[0]:.2f}"
  try:  # no finished run to read it from: the table itself (the data search order)
    from jaxml.nasbench import nb201

    return f"{nb201.load(None).optimum():.2f}"
  except Exception as e:  # no table here (a DataError, ...): the leaderboard still prints
    return f"unknown ({type(e).__name__})"


def main(argv=None) -> dict:
  args = parse_args(argv)
  if not args.table_only:
    run_all(args)
  return table(args)


if __name__ == "__main__":
  main()
