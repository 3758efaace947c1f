"""A trained SPOS (or few-shot) supernet's accuracy for the cells of an EcoNAS proxy study, beside
the same cells trained alone: how under-trained are the supernet's cells, and does it rank them?

The proxy study (`experiments/econas/proxy_study_nb201.py`) trained a set of NB201 cells alone at
several sizes; its proxy `--proxy` (default c2r2s2e10n1: C 8, N 1, 16 px, a quarter of the train
images, 10 epochs, the supernet `:cpu` size) gives each cell's standalone val accuracy. Here each
cell is scored on the supernet the SPOS way (`oneshot.val_scorer`: BN recalibration on the run's
calibration images, then accuracy on its val images; few-shot runs route each cell to its op's
sub-supernet) and the two are printed per cell with the table's accuracy, then: mean accuracy
(standalone vs inherited weights), Spearman / Kendall of each against the table, over all cells
and over the cells that compute something (an output reached through non-`none` edges).

  python tools/supernet_vs_standalone.py --supernet runs/spos/spos20_s0 --study runs/ps_default
"""

import argparse
import json
import pathlib
import sys
import tempfile

import jax
import ml_collections
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from jaxml import oneshot  # noqa: E402
from jaxml.methods import spos  # noqa: E402
from jaxml.methods.spos import fewshot  # noqa: E402
from jaxml.metrics import rank  # noqa: E402
from jaxml.spaces import nb201_encoding as enc201  # noqa: E402


def standalone(study: pathlib.Path, proxy: str) -> tuple[list[str], np.ndarray, np.ndarray]:
  """(cells, table accuracy, the proxy's standalone val accuracy) of a proxy-study run."""
  s = json.loads((study / "summary.json").read_text())
  rows = {r["proxy"]: r for r in s["rows"]}
  if proxy not in rows:
    raise SystemExit(f"error: proxy {proxy!r} not in {study}; it has: {', '.join(rows)}")
  return s["architectures"], np.asarray(s["ground_truth"]), np.asarray(rows[proxy]["scores"])


def supernet_scores(workdir: pathlib.Path, cells: list[str], paths_per_call: int) -> np.ndarray:
  """Val accuracy of each cell on the supernet(s) of the SPOS run in `workdir` (copy 0's, or the
  sub-supernet of the cell's op for a few-shot run), after per-cell BN recalibration."""
  config = ml_collections.ConfigDict(fewshot.source_config(str(workdir)))
  config.progress = False
  s, k = config.spos, config.population.size
  space = spos.build_space(config, 10)
  net = oneshot.supernet_net(space, s.affine)
  sampler = oneshot.UniformSampler(space)
  if s.split_edge >= 0:
    controller = fewshot.SplitController(sampler, k, s.split_edge)
    sampler = oneshot.SplitSampler(sampler, s.split_edge)
  else:
    controller = oneshot.ProbeController(sampler, k)
  _, hparams, _ = controller.ask(controller.init(jax.random.key(0)), jax.random.key(1))
  with tempfile.TemporaryDirectory() as tmp:  # the run object only reads data and builds steps
    run = oneshot.supernet_run(config, tmp, net, sampler, trunk="spos")
    fresh = run.engine.init_population(False, hparams=hparams)  # the structure to restore into
    pop = fewshot.restore_supernets(str(workdir), fresh, space.encoding_length)
    scorer = oneshot.val_scorer(run, "spos", net, paths_per_call)
    encs = np.stack([enc201.from_string(c) for c in cells]).astype(np.int32)
    if s.split_edge >= 0:
      scores = fewshot.routed_scorer(scorer, pop, s.split_edge)(0, encs)
    else:
      scores = scorer(oneshot.copy_variables(pop, 0), encs)
    run.close()
  return scores


def correlations(x, y) -> str:
  return (
    f"Spearman {float(rank.spearman(np.asarray(x), np.asarray(y))):.3f}, "
    f"Kendall {float(rank.kendall_tau(np.asarray(x), np.asarray(y))):.3f}"
  )


def main(argv=None) -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--supernet", type=pathlib.Path, required=True, help="a finished SPOS run")
  p.add_argument("--study", type=pathlib.Path, required=True, help="a finished proxy-study run")
  p.add_argument("--proxy", default="c2r2s2e10n1")
  p.add_argument("--paths_per_call", type=int, default=8)
  args = p.parse_args(argv)
  cells, truth, alone = standalone(args.study, args.proxy)
  shared = supernet_scores(args.supernet, cells, args.paths_per_call)
  print(f"| cell | NB201 test % | standalone ({args.proxy}) val | supernet val |")
  print("| --- | --- | --- | --- |")
  for i in np.argsort(-truth):
    print(f"| `{cells[i]}` | {truth[i]:.2f} | {alone[i]:.4f} | {shared[i]:.4f} |")
  live = np.array([enc201.computes_something(enc201.from_string(c)) for c in cells])
  print()
  for name, rows in (("all", np.ones_like(live)), ("computing", live)):
    print(
      f"{name} {int(rows.sum())} cells: mean val standalone {alone[rows].mean():.4f}, supernet "
      f"{shared[rows].mean():.4f}; vs the table: standalone "
      f"{correlations(alone[rows], truth[rows])}; supernet "
      f"{correlations(shared[rows], truth[rows])}; supernet vs standalone "
      f"{correlations(shared[rows], alone[rows])}"
    )


if __name__ == "__main__":
  main()
