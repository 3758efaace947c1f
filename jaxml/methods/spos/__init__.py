"""Single Path One-Shot NAS (Guo et al., ECCV 2020) on the trunk loop, any search space whose
array build takes an encoding (NAS-Bench-201, the SPOS / DetNAS ShuffleNetV2 space).

1. Supernet training (SPOS Sec. 3.2, Eq. 4): the K copies are K independent supernets (seeds);
   every step each copy draws new paths (`jaxml.oneshot.SampledPath`, one per sub-batch,
   `spos.sub_batches`) and only they get gradient. `spos.sampling`: 'uniform' (the paper's
   Gamma), 'unique' (NB201: uniform over non-isomorphic cells, Ning et al., NeurIPS 2021),
   'flops_bins' (the released `get_uniform_sample_cand`). Searchable-op BN without affine by
   default (`spos.affine`). The run is `jaxml.oneshot.supernet_run` under a
   `jaxml.oneshot.ProbeController`: a trunk's val accuracy is one random path's with running BN
   statistics, a progress signal only.
2. Ranking study (NB201, `spos.rank_random` > 0): `rank_random` random cells plus the table's
   `rank_top` best, scored K paths per compiled call (`jaxml.oneshot.PathScorer`, per-path BN
   recalibration on `calib_batches` x `calib_batch_size` train images, then val accuracy);
   Kendall / Spearman vs the table over the random, all and the true top-10 % cells; P@top-5 %.
   Few-shot NAS (`spos.split_edge`, variant `fewshot`; Zhao et al., ICML 2021): the 5 copies
   are the sub-supernets of one NB201 edge, warm-started from a trained SPOS run
   (`spos.init_from`); a cell is scored on its op's sub-supernet (`fewshot.py`).
3. SPOS evolution (Alg. 1, `jaxml.search.spos_evolution.SPOSEvolution`; official P 50, 20
   generations, top 10, mutation 0.1), fitness = recalibrated val accuracy; `spos.max_flops` /
   `max_params` (0 = none) reject candidates before scoring. Outputs the top architectures with
   FLOPs, params and (NB201) true accuracy.

Outputs: the trunk loop's run directory plus `ranking.json`, `search/copy<i>.npz` (resumable
per generation), `plots/rank_scatter.png`, `plots/evolution.png` and summary.json. DetNAS's
detection supernet needs COCO (not available offline): the evaluator of
`jaxml.oneshot.PathScorer` is a callback, so a detection metric plugs in unchanged.
"""

import numpy as np

from jaxml import oneshot
from jaxml.errors import ConfigError
from jaxml.methods.spos import fewshot, search
from jaxml.methods.spos.configs import (  # noqa: F401
  SAMPLINGS,
  SHUFFLENET_VARIANTS,
  SPACES,
  VARIANTS,
  experiment,
  spos_config,
  validate_config,
)
from jaxml.nasbench import nb201
from jaxml.spaces import NB201Space, ShuffleNetSPOSSpace
from jaxml.trunks import run_trunks


def build_space(config, num_classes: int):
  """The space of `config.model` at the data resolution (the supernet's BN affine from spos)."""
  m, r = config.model, config.data.resolution
  if config.spos.space == "nb201":
    return NB201Space(m.channels, m.cells_per_stage, num_classes, r)
  return ShuffleNetSPOSSpace(
    m.table, m.width, num_classes, r, m.stem, bool(config.spos.affine), 0, tuple(m.stage_blocks)
  )


def build_sampler(config, space, costs, table):
  """(sampler, canonical index map or None) of `spos.sampling`."""
  s = config.spos
  if s.sampling == "unique":
    return oneshot.nb201_unique_sampler(table, s.unique_pick)
  if s.sampling == "flops_bins":
    lo, hi = flops_range(costs)
    edges = tuple(float(e) for e in np.linspace(lo, hi * (1 + 1e-6) + 1, s.flops_bins + 1))
    return oneshot.FlopsBinSampler(space, costs, edges, int(s.flops_tries)), None
  return oneshot.UniformSampler(space), None


def flops_range(costs) -> tuple[float, float]:
  """Min and max FLOPs of the space: the dense table's, or every position at its cheapest /
  dearest choice (the additive table's columns past a position's bound repeat its last one)."""
  table = np.asarray(costs.tables[0], np.float64)
  if costs.mode == "dense":
    return float(table.min()), float(table.max())
  body, base = table[:, :-1], table[0, -1]
  return float(base + body.min(1).sum()), float(base + body.max(1).sum())


def run(config, workdir: str) -> dict:
  s = config.spos
  # The table loads (or fails with a DataError) before the run writes anything.
  needs_table = s.space == "nb201" and (s.rank_random or s.sampling == "unique" or s.generations)
  table = nb201.load(s.table_dir or None) if needs_table else None
  if s.sampling == "unique" and table is None:
    raise ConfigError("spos.sampling='unique' needs the NB201 table")
  space = build_space(config, 10)
  costs = oneshot.PathCosts.build(space)
  sampler, canonical = build_sampler(config, space, costs, table)
  net = oneshot.supernet_net(space, s.affine)
  k = config.population.size
  if s.split_edge >= 0:
    train_sampler = oneshot.SplitSampler(sampler, s.split_edge)
    controller = fewshot.SplitController(sampler, k, s.split_edge)
  else:
    train_sampler, controller = sampler, oneshot.ProbeController(sampler, k, name="spos")
  run = oneshot.supernet_run(
    config, workdir, net, train_sampler, sub_batches=s.sub_batches, trunk="spos"
  )
  warm = None
  if s.init_from:
    warm = fewshot.warm_start(s.init_from, s.init_copy, space.encoding_length, run.pop.put_copies)
  result = run_trunks(run, controller, run.trunk_steps, warm_start=warm)
  return search.search(config, run, result.pop, net, space, costs, canonical, table, result.summary)
