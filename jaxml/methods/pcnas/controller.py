"""The PC-NAS trunk-loop controller (Li et al., CVPR 2020, Fig. 1): hands the partial model
pool to the path sampler, and at the end of each stage extends the pool by one layer, estimates
the candidates' potentials with the supernet and keeps the top P (`jaxml.search.pcnas_pool`).

Stages are runs of trunks: the last `(L - 1) * stage_trunks` trunks of the run are stages 1 ..
L-1 (`stage_trunks` trunks each) and every trunk before them is stage 0, where the pool is the
empty prefix, i.e. uniform single-path training (SPOS's warm-up on the whole space). After the
last trunk of stage i the pool's partial models fix i + 1 layers; after stage L-1 they are whole
architectures, ranked by their own supernet accuracy.

The controller state (pool, candidates of the last stage end, the path the trunk loop evaluates)
is checkpointed with the supernet, so a killed run resumes and reproduces every pool exactly.
With a NAS-Bench-201 table (`truth`), each stage also records the candidates' *true* potential
(the table's mean accuracy over all their valid completions), so how well the supernet ranks
partial models is measured stage by stage.
"""

import jax
import numpy as np

from jaxml.errors import ConfigError
from jaxml.metrics import rank
from jaxml.oneshot import copy_variables
from jaxml.search import pcnas_pool
from jaxml.search.pcnas_pool import PartialModelPool, Pool
from jaxml.trunks import Controller, Keep, TrunkReport

POTENTIAL_STREAM = 0x9C  # fold_in constant of the completions' keys


def pool_dict(pool: Pool) -> dict:
  """A pool as a dict of host arrays (the checkpointed form of the controller state)."""
  return {k: np.asarray(getattr(pool, k)) for k in ("prefixes", "live", "fixed", "potential")}


def stage_ends(num_trunks: int, num_layers: int, stage_trunks: int) -> list[int]:
  """Index of the last trunk of each stage 0 .. L-1 (stage 0 takes every trunk left over)."""
  return [num_trunks - 1 - (num_layers - 1 - s) * stage_trunks for s in range(num_layers)]


def true_potential(prefixes, fixed: int, all_encs, all_acc, all_valid) -> np.ndarray:
  """float64 [R]: the table's mean accuracy over every valid completion of each prefix (-inf
  without one); `all_*` hold every architecture of the space and its accuracy / validity."""
  out = np.full(len(prefixes), -np.inf)
  for r, p in enumerate(np.asarray(prefixes)):
    match = all_valid & (all_encs[:, :fixed] == p[:fixed]).all(1)
    if match.any():
      out[r] = all_acc[match].mean()
  return out


def oracle_pool(search: PartialModelPool, all_encs, all_acc, all_valid) -> Pool:
  """The pool PC-NAS would end with if every potential were exact (the table's): what the
  procedure itself can reach, apart from the supernet's estimation error."""
  extend, keep_top = jax.jit(search.extend), jax.jit(search.keep_top)
  pool = search.init()
  for _ in range(search.num_layers):
    cands = jax.device_get(extend(pool))
    pot = true_potential(cands.prefixes, int(cands.fixed), all_encs, all_acc, all_valid)
    pool = keep_top(cands, np.asarray(pot, np.float32))
  return pool


class PCNASController(Controller):
  """Stage-wise pool shrinking on the trunk loop. `scorer(variables, paths int32 [n, L])` ->
  accuracy [n] scores paths on the supernet the trunk loop hands to `tell` (`report.pop`);
  `num_trunks` sets the stages; `truth` = (every encoding, its true accuracy, its validity) of a
  tabulated space, for the per-stage rank metrics."""

  name = "pcnas"

  def __init__(
    self,
    search: PartialModelPool,
    completions: int,
    stage_trunks: int,
    seed: int,
    scorer,
    num_trunks: int,
    truth=None,
  ):
    self.search, self.completions, self.stage_trunks = search, completions, stage_trunks
    self.key = jax.random.fold_in(jax.random.key(seed), POTENTIAL_STREAM)
    self.scorer, self.truth = scorer, truth
    self.ends = stage_ends(num_trunks, search.num_layers, stage_trunks)
    if self.ends[0] < 0:
      raise ConfigError(
        f"pcnas: the run has {num_trunks} trunks; its {search.num_layers} stages need at "
        f"least {self.ends[-1] - self.ends[0] + 1} (pcnas.stage_trunks={stage_trunks})"
      )
    # One compiled program each (per m) instead of dozens of op-by-op dispatches per stage.
    self._candidates_jit = jax.jit(self._candidates, static_argnums=2)
    self._shrink_jit = jax.jit(self._shrink)

  def init(self, key):
    rows = self.search.pool_size * self.search.max_choices
    length = self.search.num_layers
    return {
      "trunk": np.int32(0),
      "pool": pool_dict(self.search.init()),
      "candidates": {
        "prefixes": np.zeros((rows, length), np.int32),
        "live": np.zeros(rows, bool),
        "fixed": np.int32(0),
        "potential": np.full(rows, -np.inf, np.float32),
      },
      # The path the trunk loop evaluates (monitoring only): random, then the best scored one.
      "eval_path": np.asarray(self.search.space.sample(key, 1)[0], np.int32),
    }

  def ask(self, state, key):
    del key
    pool = state["pool"]
    data = {  # `jaxml.oneshot.PoolSampler`'s format, one row per copy
      "pool": np.asarray(pool["prefixes"])[None],
      "size": np.asarray([np.sum(pool["live"])], np.int32),
      "fixed": np.asarray([pool["fixed"]], np.int32),
    }
    return state, {"model": {"eval_encoding": state["eval_path"][None], "path_data": data}}, {}

  def stage_of(self, trunk: int) -> int:
    return next(s for s, end in enumerate(self.ends) if trunk <= end)

  def _candidates(self, pool: Pool, key, m: int):
    """(the P x N extensions of `pool`, their m paired completions [R, m, L], which of those
    to score: live candidates' paths within the space's limit)."""
    search = self.search
    cands = search.extend(pool)
    paths = search.complete(key, cands.prefixes, cands.fixed, m, paired=True)
    return cands, paths, search.space.is_valid(paths) & cands.live[:, None]

  def _shrink(self, cands: Pool, acc, use):
    """(the candidates with their potentials, the new pool of the top P)."""
    cands = cands.replace(potential=pcnas_pool.potential(acc, use))
    return cands, self.search.keep_top(cands, cands.potential)

  def estimate(self, pool: Pool, stage: int, variables):
    """(candidates with potentials, new pool, the best scored path): PC-NAS's evaluation of
    the P x N extensions of `pool`, each on `completions` uniform completions (one when the
    candidates are whole architectures); violators are neither scored nor counted."""
    whole = int(pool.fixed) + 1 == self.search.num_layers
    m = 1 if whole else self.completions
    key = jax.random.fold_in(self.key, stage)
    cands, paths, use = jax.device_get(self._candidates_jit(pool, key, m))
    acc = np.zeros(use.shape, np.float32)
    acc[use] = self.scorer(variables, paths[use])
    cands, new_pool = jax.device_get(self._shrink_jit(cands, acc, use))
    best = paths[use][np.argmax(acc[use])] if use.any() else None
    return cands, new_pool, best

  def tell(self, state, report: TrunkReport):
    t = int(state["trunk"])
    new = dict(state, trunk=np.int32(t + 1))
    stage = self.stage_of(t)
    info = {"stage": stage, "fixed_layers": int(state["pool"]["fixed"])}
    if t == self.ends[stage]:
      variables = copy_variables(report.pop, 0)  # the supernet as trained up to this trunk end
      cands, pool, best = self.estimate(Pool(**state["pool"]), stage, variables)
      new.update(pool=pool_dict(pool), candidates=pool_dict(cands))
      if best is not None:
        new["eval_path"] = np.asarray(best, np.int32)
      info.update(stage_end=True, pool_best_potential=float(np.max(pool.potential)))
      if self.truth is not None:
        info.update(self.stage_truth(cands))
    return new, Keep(), info

  def stage_truth(self, cands: Pool) -> dict:
    """How the supernet's potentials of this stage's candidates rank against the table's."""
    encs, acc, valid = self.truth
    live = np.asarray(cands.live) & np.isfinite(cands.potential)
    true = true_potential(np.asarray(cands.prefixes)[live], int(cands.fixed), encs, acc, valid)
    est = np.asarray(cands.potential)[live]
    ok = np.isfinite(true)
    out = {"candidates_true_best": float(np.max(true)) if ok.any() else None}
    if ok.sum() >= 2:
      for name, fn in (("kendall", rank.kendall_tau), ("spearman", rank.spearman)):
        v = float(fn(est[ok], true[ok]))  # nan when every estimate ties (untrained supernet)
        if np.isfinite(v):
          out[f"potential_{name}"] = v
      out["kept_true_best"] = bool(np.argmax(np.where(ok, true, -np.inf)) in self.top_rows(est))
    return out

  def top_rows(self, est) -> set[int]:
    return set(np.argsort(-est, kind="stable")[: self.search.pool_size].tolist())

  def history(self, state) -> dict:
    pool, cands = state["pool"], state["candidates"]
    return {
      **{f"pool_{k}": v for k, v in pool.items()},
      "candidate_prefixes": cands["prefixes"],
      "candidate_live": cands["live"],
      "candidate_potential": cands["potential"],
    }
