"""What a supernet's ranking follows: its scores and the table's accuracy of the ranking study's
random cells, grouped by how many of the cell's 6 edges are convolutions (NB201), with the
Spearman of each against that count (issue 27: a supernet whose shared conv weights are
under-trained scores parameter-free cells highest, the opposite of the table).

  python tools/ranking_by_ops.py runs/spos/spos20_s0 runs/spos/fewshot20plus2_s0
"""

import argparse
import json
import pathlib
import sys

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from jaxml.metrics import rank  # noqa: E402
from jaxml.spaces import nb201_encoding as enc201  # noqa: E402

CONVS = (enc201.OPS.index("nor_conv_1x1"), enc201.OPS.index("nor_conv_3x3"))


def by_convs(ranking: dict) -> tuple[list[tuple[int, int, float, float]], float, float]:
  """Rows (convs, cells, mean score, mean table accuracy) over the random cells that compute
  something (copy 0's scores), and the Spearman of scores / table accuracy vs the conv count."""
  random = np.asarray(ranking["is_random"], bool)
  encs = np.stack([enc201.from_string(a) for a in ranking["architectures"]])[random]
  scores = np.asarray(ranking["scores"][0], np.float64)[random]
  truth = np.asarray(ranking["true_accuracy"], np.float64)[random]
  live = np.array([enc201.computes_something(e) for e in encs])
  convs = np.isin(encs, CONVS).sum(1)[live]
  scores, truth = scores[live], truth[live]
  rows = [
    (k, int((convs == k).sum()), scores[convs == k].mean(), truth[convs == k].mean())
    for k in range(enc201.NUM_EDGES + 1)
    if (convs == k).any()
  ]
  rho = lambda x: float(rank.spearman(x, convs.astype(np.float64)))  # noqa: E731
  return rows, rho(scores), rho(truth)


def main(argv=None) -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("runs", nargs="+", type=pathlib.Path, help="SPOS / few-shot / PC-NAS run dirs")
  args = p.parse_args(argv)
  missing = [str(run) for run in args.runs if not (run / "ranking.json").is_file()]
  if missing:  # before any output: one line, exit 2 (a run dir without its ranking study)
    print(f"ranking_by_ops: no ranking.json in {', '.join(missing)}", file=sys.stderr)
    raise SystemExit(2)
  for run in args.runs:
    rows, rho_score, rho_truth = by_convs(json.loads((run / "ranking.json").read_text()))
    print(f"{run}: Spearman vs conv count: supernet score {rho_score:.2f}, table {rho_truth:.2f}")
    print("| convs | cells | supernet val acc (mean) | NB201 test % (mean) |")
    print("| --- | --- | --- | --- |")
    for k, n, s, t in rows:
      print(f"| {k} | {n} | {s:.4f} | {t:.2f} |")
    print()


if __name__ == "__main__":
  main()
