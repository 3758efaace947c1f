"""Per-epoch trajectory of DARTS-family runs on NAS-Bench-201: the derived cell's table accuracy
and the share of its edges whose argmax is a parameter-free op (skip / pooling; 'none' is never
derived), mean ± std over the runs of each group (issue 27: does the collapse appear?).

Groups are run directories sharing a name once the `_s<seed>` suffix is cut:

  python tools/darts_trajectory.py /work/runs/darts/cpu_s* /work/runs/darts/cpu_gdas_s*
  python tools/darts_trajectory.py runs/darts/* --every 5
"""

import argparse
import collections
import json
import pathlib
import re

import numpy as np


def trajectory(workdir: pathlib.Path) -> dict[int, tuple[float, float, str]]:
  """epoch -> (true accuracy, parameter-free share, derived cell) of copy 0, from metrics.jsonl."""
  rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  rows = [r for r in rows if "darts_true_acc_per_copy" in r]
  steps = sorted({r["step"] for r in rows})
  per_epoch = steps[0] if steps else 1  # one row per epoch (trunk end)
  return {
    r["step"] // per_epoch: (
      r["darts_true_acc_per_copy"][0],
      r["darts_param_free_share_mean"],
      r["darts_derived"][0],
    )
    for r in rows
  }


def main(argv=None) -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("runs", nargs="+", type=pathlib.Path)
  p.add_argument("--every", type=int, default=2, help="print every n-th epoch (and the last)")
  args = p.parse_args(argv)
  groups = collections.defaultdict(list)
  for run in args.runs:
    if (run / "metrics.jsonl").exists():
      groups[re.sub(r"_s\d+$", "", run.name)].append(trajectory(run))
  names = sorted(groups)
  epochs = sorted(set().union(*[t.keys() for g in groups.values() for t in g]))
  shown = [e for e in epochs if e % args.every == 0 or e in (epochs[0], epochs[-1])]
  head = " | ".join(f"{n} (n={len(groups[n])}): acc / param-free share" for n in names)
  print(f"| epoch | {head} |")
  print("| --- |" + " --- |" * len(names))
  for e in shown:
    cells = []
    for n in names:
      vals = np.array([t[e][:2] for t in groups[n] if e in t])
      if not len(vals):
        cells.append("-")
        continue
      acc, share = vals[:, 0], vals[:, 1]
      cells.append(f"{acc.mean():.2f} ± {acc.std():.2f} / {share.mean():.2f}")
    print(f"| {e} | " + " | ".join(cells) + " |")
  print()
  for n in names:
    finals = [t[max(t)] for t in groups[n]]
    print(f"{n}: final cells: " + "; ".join(f"{c} ({a:.2f})" for a, _, c in finals))


if __name__ == "__main__":
  main()
