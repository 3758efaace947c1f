"""Weight-sharing (one-shot) NAS over any search space's array build: path sampling and costs.

Single Path One-Shot (Guo et al., ECCV 2020, Sec. 3.2, Eq. 3-4): one supernet holds every
candidate op; each training step trains ONE path (architecture) drawn from a distribution Gamma,
so only that path's weights get gradient, and candidates are later ranked by the supernet's
accuracy with their inherited weights. This module is space-generic: any
`jaxml.spaces.SearchSpace` whose array build `space.network()` is called
`net.apply(v, x, encoding=int32[L], train=...)` (NB201, DARTS, EcoNAS, ShuffleNet-SPOS, ...).

API (stable; later additions only):

- `SampledPath(net, sampler, sub_batches=1)`: a model with Flax's `init` / `apply` interface for
  the engine (`jaxml.engine.Engine`). In training it draws `sub_batches` paths from
  `sampler(key, n, path_data)` with the step's 'path' rng (`training.make_train_step` derives it
  from the copy's key and the step, the same on every data shard) and runs sub-batch i through
  path i. Its variables ARE the array build's (same tree), so scoring and fixed builds use them
  directly. Model inputs (`hparams['model']`, per copy): `encoding` (train/evaluate that fixed
  path), `eval_encoding` (the path evaluated when `train=False`), `path_data` (a pytree handed
  to the sampler, e.g. PC-NAS's pool: changing it needs no recompilation).
- Samplers (`sampler(key, n, data=None) -> int32[n, L]`, jittable, frozen dataclasses):
  `UniformSampler(space)` (SPOS's Gamma), `ClassSampler` (uniform over equivalence classes, e.g.
  `nb201_unique_sampler(table)`: Ning et al., NeurIPS 2021, de-isomorphic sampling),
  `FlopsBinSampler` (the official SPOS `get_uniform_sample_cand`) and `PoolSampler` (the first
  positions from a pool of partial paths in `path_data`, the rest uniform; PC-NAS).
- `PathCosts.build(space)`: jittable FLOPs (MACs) and params per encoding from the space's
  counters: a dense table when the space is small (NB201: 15,625 rows), else per-position
  additive tables (checked to be additive). `ConstrainedSpace(space, costs, max_flops=...)` is
  the same space whose `is_valid` enforces the limits (SPOS evolution rejects violators) and
  whose `uid` can identify equivalent encodings (`canonical`).
- Batched scoring with per-path BN recalibration: `jaxml.oneshot_scoring` (`make_scorer`,
  `score_paths`, `recalibrated_stats`, `classification_evaluator`).

Samplers live in `jaxml.oneshot_samplers`, costs in `jaxml.oneshot_costs`; everything is
re-exported here.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from jaxml.errors import ConfigError

# -- the model the engine trains -------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class SampledPath:
  """`net` (a space's array build) with a path drawn per train step (per sub-batch).

  Only the Flax entry points the engine uses are provided (`init`, `apply`); the variables are
  `net`'s own. With `sub_batches` S > 1 the batch is cut into S equal parts, part i runs path i
  and the BN running statistics are updated S times in sequence (one update per path).
  """

  net: Any
  sampler: Any
  sub_batches: int = 1

  def init(self, rngs, x, train: bool = False, encoding=None, eval_encoding=None, path_data=None):
    del path_data
    enc = encoding if encoding is not None else eval_encoding
    if enc is None:
      raise ConfigError("SampledPath.init needs an `encoding` or `eval_encoding` model input")
    return self.net.init(rngs, x, encoding=enc, train=train)

  def apply(
    self,
    variables,
    x,
    train: bool = False,
    mutable=False,
    rngs=None,
    encoding=None,
    eval_encoding=None,
    path_data=None,
  ):
    if encoding is not None or not train:
      enc = encoding if encoding is not None else eval_encoding
      if enc is None:
        raise ConfigError(
          "SampledPath evaluates one path per call: pass `eval_encoding` (hparams['model'])"
        )
      return self.net.apply(variables, x, encoding=enc, train=train, mutable=mutable, rngs=rngs)
    if not rngs or "path" not in rngs:
      raise ConfigError("SampledPath draws its paths from the 'path' rng: apply(..., rngs=...)")
    s = self.sub_batches
    if x.shape[0] % s:
      raise ConfigError(f"the batch ({x.shape[0]}) must split into sub_batches={s} equal parts")
    paths = self.sampler(rngs["path"], s, path_data)
    other = {k: v for k, v in rngs.items() if k != "path"}
    params = {k: v for k, v in variables.items() if k != "batch_stats"}
    stats = variables.get("batch_stats", {})
    outs = []
    for i, part in enumerate(jnp.split(x, s)):
      out = self.net.apply(
        {**params, "batch_stats": stats},
        part,
        encoding=paths[i],
        train=True,
        mutable=["batch_stats"],
        rngs={k: jax.random.fold_in(v, i) for k, v in other.items()} if s > 1 else other,
      )
      outs.append(out[0])
      stats = out[1].get("batch_stats", {})
    logits = outs[0] if s == 1 else jnp.concatenate(outs)
    return (logits, {"batch_stats": stats}) if mutable else logits


# The rest of the API lives in small modules, re-exported here: `from jaxml import oneshot`.
from jaxml.oneshot_costs import DENSE_COST_LIMIT, ConstrainedSpace, PathCosts  # noqa: E402
from jaxml.oneshot_samplers import (  # noqa: E402
  ClassSampler,
  FlopsBinSampler,
  PoolSampler,
  UniformSampler,
  nb201_unique_sampler,
)
from jaxml.oneshot_scoring import (  # noqa: E402
  classification_evaluator,
  make_scorer,
  recalibrated_stats,
  score_paths,
)

__all__ = [
  "DENSE_COST_LIMIT",
  "ClassSampler",
  "ConstrainedSpace",
  "FlopsBinSampler",
  "PathCosts",
  "PoolSampler",
  "SampledPath",
  "UniformSampler",
  "classification_evaluator",
  "make_scorer",
  "nb201_unique_sampler",
  "recalibrated_stats",
  "score_paths",
]
