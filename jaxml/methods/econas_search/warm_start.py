"""Zero-cost warm start of the EcoNAS search (`econas.warm_start`): the initial population is the
best-scored of many random cells instead of random cells.

EcoNAS draws its initial networks at random (official search/main.py); the training proxy then
spends its first cycle on them. A zero-cost proxy (Abdelfattah et al., "Zero-Cost Proxies for
Lightweight NAS", ICLR 2021; `jaxml.metrics.zero_cost`) scores an untrained network in one
forward/backward pass, so `warm_start_pool` random cells cost about as much as a few steps of
training: the search starts from the `initial_size` cells it ranks highest (Abdelfattah et al.,
Sec. 5, "warmup", do the same for aging evolution). Training proxies and zero-cost proxies in one
search: the zero-cost one chooses where to start, the training one decides from there.

The picks are written to `warm_start.json` in the workdir and read back on resume (the same
picks, nothing recomputed). The random cells are drawn from the seed (fold 7), the scoring
batch is the first `warm_start_batch` images of a seeded permutation of the train split.
"""

from __future__ import annotations

import json
import pathlib
import time

import jax
import numpy as np

from jaxml.methods.proxy_study.configs import zero_cost_net
from jaxml.metrics import zero_cost
from jaxml.metrics.writers import write_json_atomic

FILENAME = "warm_start.json"


def initial_networks(config, space, run) -> np.ndarray:
  """int [initial_size, L]: the best-scored of `warm_start_pool` random cells, or the saved
  picks."""
  e = config.econas
  path = pathlib.Path(run.workdir) / FILENAME
  if path.exists():
    return np.asarray([space.from_string(a) for a in json.loads(path.read_text())["picked"]])
  key = jax.random.fold_in(jax.random.key(config.seed), 7)
  pool = np.unique(np.asarray(space.sample(key, int(e.warm_start_pool))), axis=0)
  net = zero_cost_net(e.warm_start_net)
  train = run.data.train
  rng = np.random.default_rng([config.seed, 7])
  pick = rng.permutation(train.labels.shape[0])[: int(e.warm_start_batch)]
  t0 = time.perf_counter()
  scores = zero_cost.nb201_scores(
    net.space(run.data.num_classes),
    pool,
    train.images[pick],
    train.labels[pick],
    seed=config.seed,
    measures=(e.warm_start,),  # only its passes: synflow alone is a fraction of all four
  )[e.warm_start]
  # NaN (a cell whose score overflows or has no path) ranks last; ties keep the draw order.
  order = np.argsort(-np.nan_to_num(scores, nan=-np.inf), kind="stable")[: int(e.initial_size)]
  picked = pool[order]
  write_json_atomic(
    path,
    {
      "measure": e.warm_start,
      "net": f"C {net.channels}, N {net.cells_per_stage}, {net.resolution} px",
      "pool": int(len(pool)),
      "wall_time_s": time.perf_counter() - t0,
      "picked": [space.to_string(a) for a in picked],
      "picked_scores": [float(s) for s in scores[order]],
      "pool_score_median": float(np.nanmedian(scores)),
    },
  )
  return picked


def summary(workdir) -> dict | None:
  """The warm start's record (measure, pool, wall time, picks), or None without one."""
  path = pathlib.Path(workdir) / FILENAME
  return json.loads(path.read_text()) if path.exists() else None
