"""Weight-sharing (one-shot) NAS over any search space's array build.

Single Path One-Shot (Guo et al., ECCV 2020, Sec. 3.2, Eq. 3-4): one supernet holds every
candidate op; each training step trains ONE path (architecture) drawn from a distribution Gamma,
so only that path's weights get gradient, and candidates are later ranked by the supernet's
accuracy with their inherited weights. The package is space-generic: any
`jaxml.spaces.SearchSpace` whose array build `space.network()` is called
`net.apply(v, x, encoding=int32[L], train=...)` (NB201, DARTS, EcoNAS, ShuffleNet-SPOS, ...).
SPOS, PC-NAS and CRNAS (`jaxml.methods.*`) all train and score through it.

- `supernet`: `SampledPath(net, sampler, sub_batches=1)`, the model the engine trains (a path
  drawn per train step from `sampler(key, n, path_data)` with the step's 'path' rng; model inputs
  in `hparams['model']`: `encoding`, `eval_encoding`, `path_data`); `supernet_run`, the one
  supernet-training run; `ProbeController`, its trunk-loop controller; `copy_variables`.
- `samplers`: `UniformSampler` (SPOS's Gamma), `ClassSampler` / `nb201_unique_sampler`
  (de-isomorphic sampling, Ning et al., NeurIPS 2021), `FlopsBinSampler` (the official SPOS
  `get_uniform_sample_cand`), `PoolSampler` (PC-NAS's partial-model pool in `path_data`),
  `SplitSampler` (few-shot NAS: one position pinned to the copy's op in `path_data`).
- `costs`: `PathCosts.build(space)` (jittable FLOPs / params per encoding) and
  `ConstrainedSpace(space, costs, max_flops=...)` (a space whose `is_valid` enforces limits).
- `scoring`: `PathScorer`, the one path scorer (K paths per compiled call, chunked, per-path BN
  recalibration, SPOS Sec. 3.3), on `make_scorer` / `score_paths` / `recalibrated_stats`, with
  the `classification_evaluator` callback (a detection evaluator plugs in the same way).
"""

from jaxml.oneshot.costs import DENSE_COST_LIMIT, ConstrainedSpace, PathCosts
from jaxml.oneshot.samplers import (
  ClassSampler,
  FlopsBinSampler,
  PoolSampler,
  SplitSampler,
  UniformSampler,
  nb201_unique_sampler,
)
from jaxml.oneshot.scoring import (
  PathScorer,
  calibration_batches,
  classification_evaluator,
  make_scorer,
  recalibrated_stats,
  score_paths,
)
from jaxml.oneshot.supernet import (
  ProbeController,
  SampledPath,
  copy_variables,
  supernet_net,
  supernet_run,
  val_scorer,
)

__all__ = [
  "DENSE_COST_LIMIT",
  "ClassSampler",
  "ConstrainedSpace",
  "FlopsBinSampler",
  "PathCosts",
  "PathScorer",
  "PoolSampler",
  "ProbeController",
  "SampledPath",
  "SplitSampler",
  "UniformSampler",
  "calibration_batches",
  "classification_evaluator",
  "copy_variables",
  "make_scorer",
  "nb201_unique_sampler",
  "recalibrated_stats",
  "score_paths",
  "supernet_net",
  "supernet_run",
  "val_scorer",
]
