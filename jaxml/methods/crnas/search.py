"""The search phases of CRNAS (`jaxml.methods.crnas`; Liang et al., ICLR 2020, Sec. 3): the
stage and operation spaces of the config's backbone, each supernet's training (the one-shot
run of `jaxml.oneshot.supernet_run`), the scoring of every eligible allocation (Eq. 1) and the
greedy beam search over the dilations (Sec. 3.3), all scored by `jaxml.oneshot.PathScorer`."""

from __future__ import annotations

import dataclasses
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from jaxml import configs, oneshot
from jaxml.data import pipeline
from jaxml.evaluation import eval_batches
from jaxml.methods.crnas.configs import baseline_of
from jaxml.metrics.writers import write_json_atomic
from jaxml.search.beam_search import BeamSearch
from jaxml.search.beam_search import State as BeamState
from jaxml.spaces.crnas import CRDilationSpace, CRStageSpace
from jaxml.spaces.crnas_mobilenet import CRMobileDilationSpace, CRMobileStageSpace
from jaxml.trunks import run_trunks


@dataclasses.dataclass(frozen=True, eq=False)
class BranchSampler:
  """One branch per stage, uniform and independent (CRNAS Sec. 3.2's stage supernet training)."""

  space: CRStageSpace

  def __call__(self, key, n: int, data=None):
    del data
    return self.space.sample_branches(key, n)


def _macro(config, num_classes: int) -> tuple[type, type, dict]:
  """(stage space class, dilation space class, macro fields) of the config's backbone."""
  m = config.model
  common = dict(num_classes=num_classes, input_size=config.data.resolution, stem=m.stem)
  if config.crnas.backbone == "mobilenetv2":
    return CRMobileStageSpace, CRMobileDilationSpace, dict(width_mult=float(m.width_mult), **common)
  return CRStageSpace, CRDilationSpace, dict(width=m.width, block=m.block, **common)


def stage_space(config, num_classes: int) -> CRStageSpace | CRMobileStageSpace:
  space, _, macro = _macro(config, num_classes)
  return space(
    **macro,
    baseline=baseline_of(config.crnas),
    max_blocks=tuple(int(t) for t in config.crnas.max_blocks),
    flops_tolerance=float(config.crnas.flops_tolerance),
  )


def dilation_space(config, num_classes: int, allocation) -> CRDilationSpace | CRMobileDilationSpace:
  _, space, macro = _macro(config, num_classes)
  return space(
    **macro,
    allocation=tuple(int(t) for t in allocation),
    dilations=tuple(int(d) for d in config.crnas.dilations),
  )


def train_supernet(config, workdir: pathlib.Path, space, sampler, eval_encoding):
  """Trains `space`'s array build with paths from `sampler` in `workdir` (resumable), one trunk
  per `eval_every`, the path `eval_encoding` evaluated on val at each trunk end; returns
  (summary, the final supernet variables, the run's data)."""
  run = oneshot.supernet_run(config, workdir, space.network(), sampler, eval_splits=("val",))
  spe = run.engine.steps_per_epoch
  trunk = configs.steps("eval_every", config, spe, default=spe)
  result = run_trunks(run, oneshot.ProbeController(eval_encoding), trunk)
  variables = oneshot.copy_variables(jax.device_get(result.pop), 0)
  return result.summary, variables, run.data


def path_scorer(config, data, net) -> oneshot.PathScorer:
  """`scorer(variables, encodings, eval_data)` -> accuracy: BN recalibration on the first
  `crnas.calib_batches` train batches of a seeded order, `crnas.paths_per_chunk` paths per
  vmapped chunk, every path in one call."""
  nb, bs = int(config.crnas.calib_batches), config.batch_size
  order = np.asarray(pipeline.epoch_permutation(jax.random.key(config.seed), 0, nb * bs))
  return oneshot.PathScorer(
    net,
    oneshot.classification_evaluator(data.num_classes, config.data.resolution),
    calib=oneshot.calibration_batches(data.train.images, nb, bs, order),
    resolution=config.data.resolution,
    paths_per_chunk=int(config.crnas.paths_per_chunk),
  )


def score_allocations(config, workdir, space, data, variables) -> dict:
  """Every eligible allocation's val accuracy (one batched call); cached in stage_scores.json."""
  path = workdir / "stage_scores.json"
  if path.exists():
    return json.loads(path.read_text())
  eligible = space.eligible()
  val = eval_batches(data.val.images, data.val.labels, config.eval_batch_size)
  acc = path_scorer(config, data, space.network())(variables, eligible, val)
  # Best first; on a tie the baseline wins (no reallocation without evidence), then the
  # enumeration order.
  is_base = (eligible + 1 == np.asarray(baseline_of(config.crnas))).all(1)
  order = np.lexsort((np.arange(len(acc)), ~is_base, -acc))
  result = {
    "allocations": [space.to_string(e) for e in eligible[order]],
    "val_accuracy": acc[order].tolist(),
    "macs": space.flops(eligible[order]).tolist(),
  }
  write_json_atomic(path, result)
  return result


def beam_search(config, workdir, space, data, variables) -> dict:
  """CRNAS §3.3's greedy beam search over the dilations, resumed block by block from beam.json."""
  cr = config.crnas
  search = BeamSearch(space, int(cr.beam_size))
  path = workdir / "beam.json"
  saved = json.loads(path.read_text()) if path.exists() else {"blocks": []}
  state = search.init()
  if saved["blocks"]:
    last = saved["blocks"][-1]
    state = BeamState(
      jnp.asarray(len(saved["blocks"]), jnp.int32),
      jnp.asarray(last["beam"], jnp.int32),
      jnp.asarray(last["scores"], jnp.float32),
    )
  c = int(cr.score_batches)
  val = eval_batches(data.val.images, data.val.labels, config.eval_batch_size)
  score = path_scorer(config, data, space.network())
  key = jax.random.fold_in(jax.random.key(config.seed), 0xC12)
  for t in range(len(saved["blocks"]), search.num_steps):
    state, cands = search.ask(state)
    # One uniform completion per candidate and val mini-batch (the same draws on a re-run).
    # Every candidate is scored, live or not (`tell` drops the others): one shape, one compile.
    full = np.asarray(search.complete(jax.random.fold_in(key, t), cands, c))
    per_batch = [score(variables, full[b], tuple(x[b : b + 1] for x in val)) for b in range(c)]
    state = search.tell(state, cands, jnp.asarray(np.mean(per_batch, 0), jnp.float32))
    saved["blocks"].append(
      {
        "block": space.block_names()[t],
        "beam": np.asarray(state.beam).tolist(),
        "scores": np.asarray(state.scores).tolist(),
      }
    )
    write_json_atomic(path, saved)
  best = np.asarray(search.best(state))
  saved["best"] = space.to_string(best)
  saved["best_dilations"] = list(space.dilation_values(best))
  write_json_atomic(path, saved)
  return saved
