"""EcoNAS rank-consistency study on NAS-Bench-201 (Zhou et al., CVPR 2020, Sec. 3 and 4).

Do reduced-setting proxies rank architectures as the full setting does? N architectures of the
NAS-Bench-201 space are drawn stratified over the table's CIFAR-10 accuracy (`select_archs`),
then, for each proxy of `proxy_study.proxies` (`jaxml.proxy`, e.g. 'c4r4s0e60n1'), trained from
scratch at the proxy's C, N, resolution, sample ratio and epochs by the trunk loop
(`jaxml.trunks.run_trunks`, its checkpoints and resume), either as ONE population of N copies
(`proxy_study.build='array'`: copy i is architecture i through the space's array build,
`hparams['model']['encoding']`, one compile) or as N runs of one copy each (`'fixed'`: each
cell's fixed build, only its ops, one compile per cell). On a 2-core CPU fixed builds train ~4x
faster (the array build computes every candidate op, and `vmap` turns each conv into a grouped
conv) and win from about one epoch of 45k images on, compiles included (BENCHMARKS.md, "array
build vs fixed builds"); for proxies of a few dozen steps their N compiles cost more. Array
copy 0 and fixed run 0 start from the same weights of the chosen ops (a copy's initial key
depends on its index, so other pairs differ).

A copy's score is its val accuracy at the end (val = images held out of the train split, never
the test set). Scores are ranked against the table's 200-epoch CIFAR-10 test accuracy (Dong &
Yang, ICLR 2020): Spearman and Kendall tau-b over all N and within the better half by ground
truth, and precision@k (`jaxml.metrics.rank`). The zero-cost proxies (`jaxml.metrics.zero_cost`:
synflow, NASWOT, snip, grad_norm, #params, FLOPs) are scored on the same architectures and land
in the same table.

Outputs in the workdir: `proxies/<proxy>/` (each proxy's run directory with checkpoints; one
`arch<i>/` per cell for fixed builds), `zero_cost.json`, `table.md` (proxy -> cost fraction,
Spearman, Kendall, top-half Spearman, precision@k, wall time), `plots/rank_scatter_<proxy>.png`,
`plots/cost_vs_spearman.png` and `summary.json`. Resumable: a finished proxy or cell (its
summary.json) or zero-cost file is read back, an unfinished one continues from its last
checkpoint, so a killed study re-run with the same command does only what is left.
"""

from __future__ import annotations

import copy
import json
import pathlib
import time

import numpy as np

from jaxml import experiment
from jaxml import proxy as proxy_lib
from jaxml.methods.proxy_study import report as proxy_study_report
from jaxml.methods.proxy_study.configs import (  # noqa: F401  (the method's public names)
  BUILDS,
  VARIANTS,
  proxy_config,
  validate_config,
  zero_cost_net,
)
from jaxml.metrics import zero_cost
from jaxml.metrics.writers import write_json_atomic
from jaxml.nasbench import nb201
from jaxml.nasbench.nb201 import select_archs  # noqa: F401  (the study's cells)
from jaxml.search.controller import FixedArchitectures
from jaxml.spaces import nb201_encoding as enc201
from jaxml.spaces.nb201_encoding import computes_something  # noqa: F401
from jaxml.trunks import run_trunks

# -- the study ----------------------------------------------------------------------------------


def _train_proxy(config, p, encodings, workdir: pathlib.Path) -> dict:
  """Trains the N architectures under proxy `p` (or reads its finished run): one array-build
  population of N copies (`build='array'`), or N fixed-build runs of one copy each."""
  done = workdir / "summary.json"
  if done.exists():
    return json.loads(done.read_text())
  c = proxy_config(config, p)
  if config.proxy_study.build == "array":
    s = _train(c, workdir, FixedArchitectures(encodings))
    return {**s, "step_time_s": _step_time(s, c.batch_size * len(encodings))}
  runs, walls, data = [], [], None
  for i, enc in enumerate(encodings):
    one = copy.deepcopy(c)
    one.model.arch = enc201.to_string(enc)
    one.population.size = 1
    # A cell trains for a minute or less at CPU size: its checkpoints are its eval points (a
    # kill loses at most that), not one per 100 steps as the whole array population's.
    one.update(checkpoint_every_steps=0, checkpoint_every_epochs=0.0)
    cell_dir = workdir / f"arch{i:03d}"
    done_before = (cell_dir / "summary.json").exists()
    t0 = time.perf_counter()
    if data is None and not done_before:
      data = experiment.load_datasets(c.data, c.seed)  # once for all the proxy's cells
    runs.append(_train(one, cell_dir, None, data, reports=False))
    # The cell's whole cost here (set-up and data included), or its run's wall time if it
    # finished in an earlier process.
    walls.append(runs[-1]["wall_time_s"] if done_before else time.perf_counter() - t0)
  summary = {
    "val_accuracy_per_copy": [r["val_accuracy_per_copy"][0] for r in runs],
    "wall_time_s": float(sum(walls)),
    "step_time_s": float(sum(_step_time(r, c.batch_size) for r in runs)),
    "architectures": [enc201.to_string(e) for e in encodings],
  }
  write_json_atomic(done, summary)
  return summary


def _step_time(summary: dict, images_per_step: int) -> float:
  """Seconds the run's train steps take at its measured rate (compiles, evaluation,
  checkpoints and set-up left out): what the wall time is compared with."""
  return summary["steps"] * images_per_step / summary["images_per_s"]


def _train(config, workdir: pathlib.Path, controller, data=None, reports=True) -> dict:
  """One trunk-loop run (or its finished summary); the CIFAR test split is never scored.
  `data`: the datasets of `config.data`, when already loaded; `reports=False`: no TensorBoard
  log or curves plot (a fixed-build cell, one of the proxy's N runs: the study reports it)."""
  done = workdir / "summary.json"
  if done.exists():
    return json.loads(done.read_text())
  # The ground truth is the table: the CIFAR-10 test split is never scored (N copies x 10,000
  # images of evaluation would cost about half of a one-epoch proxy's training).
  run = experiment.PopulationRun(
    config, str(workdir), controller, eval_splits=("val",), data=data, reports=reports
  )
  trunk = -(-run.total_steps // config.proxy_study.eval_points)
  return run_trunks(run, controller, trunk).summary


def _zero_cost(config, encodings, path: pathlib.Path) -> dict:
  """The zero-cost scores of the architectures at the `zero_cost_net` size (or the saved ones)."""
  if path.exists():
    return json.loads(path.read_text())
  study = config.proxy_study
  p = zero_cost_net(study.zero_cost_net)
  data = experiment.load_datasets(config.data, config.seed)
  rng = np.random.default_rng([config.seed, 11])
  pick = np.sort(rng.permutation(data.train.labels.shape[0])[: study.zero_cost_batch])
  t0 = time.perf_counter()
  scores = zero_cost.nb201_scores(
    p.space(data.num_classes),
    encodings,
    data.train.images[pick],
    data.train.labels[pick],
    seed=config.seed,
    build=study.zero_cost_build,
  )
  out = {
    "net": f"C {p.channels}, N {p.cells_per_stage}, {p.resolution} px",
    "build": study.zero_cost_build,
    "wall_time_s": time.perf_counter() - t0,
    "scores": {k: v.tolist() for k, v in scores.items()},
  }
  write_json_atomic(path, out)
  return out


def run(config, workdir: str) -> dict:
  validate_config(config)
  study = config.proxy_study
  root = pathlib.Path(workdir)
  table = nb201.load(study.table_dir or None)
  encodings, truth = select_archs(table, study.num_archs, config.seed, study.dataset)
  root.mkdir(parents=True, exist_ok=True)
  write_json_atomic(root / "config.json", config.to_dict())
  k = study.precision_k
  rows = []
  for p in proxy_lib.parse(study.proxies) if study.proxies else ():
    s = _train_proxy(config, p, encodings, root / "proxies" / p.name)
    val = np.asarray(s["val_accuracy_per_copy"], np.float64)
    row = {
      "proxy": p.name,
      "kind": "training",
      "cost_fraction": proxy_lib.cost_fraction(p, encodings, _train_size(config)),
      "wall_time_s": s["wall_time_s"],
      "step_time_s": s.get("step_time_s"),
      **proxy_study_report.rank_metrics(val, truth, k),
      "scores": val.tolist(),
    }
    rows.append(row)
  if study.zero_cost:
    zc = _zero_cost(config, encodings, root / "zero_cost.json")
    for name in zero_cost.MEASURES:
      scores = np.asarray(zc["scores"][name], np.float64)
      rows.append(
        {
          "proxy": name,
          "kind": "zero-cost",
          "cost_fraction": 0.0,
          "wall_time_s": zc["wall_time_s"] if name in zero_cost.TRAINING_FREE else 0.0,
          "step_time_s": None,
          **proxy_study_report.rank_metrics(scores, truth, k),
          "scores": scores.tolist(),
        }
      )
  proxy_study_report.write_table(root / "table.md", rows, k)
  proxy_study_report.plot_study(root / "plots", rows, truth)
  summary = {
    "method": "proxy_study",
    "dataset": study.dataset,
    "num_archs": int(study.num_archs),
    "architectures": [enc201.to_string(e) for e in encodings],
    "ground_truth": truth.tolist(),
    "precision_k": k,
    "zero_cost_net": study.zero_cost_net if study.zero_cost else None,
    "rows": rows,
  }
  write_json_atomic(root / "summary.json", summary)
  return summary


def _train_size(config) -> int:
  """Train images before the sample ratio: CIFAR-10's 50,000 less the val hold-out."""
  return 50_000 - config.data.val_size
