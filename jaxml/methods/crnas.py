"""CRNAS: computation reallocation across stages and dilations (Liang et al., "Computation
Reallocation for Object Detection", ICLR 2020, arXiv 1912.11234, §3), on one-shot supernets.

Four phases in one run directory (each resumable; a re-run continues where it stopped):

1. `stage_supernet/`: the stage supernet (`jaxml.spaces.crnas.CRStageSpace`, T_i blocks per
   stage), a K = 1 trunk-loop run with `jaxml.oneshot.SampledPath`: each step draws one branch
   (block count) per stage (`crnas.stage_sampling='branches'`, the paper's) or one eligible
   allocation (`'eligible'`); its val metric is the baseline allocation's path.
2. `stage_scores.json`: every eligible allocation (sum tau = N, tau_i >= 1, MACs within 1 % of
   the baseline) scored on the held-out val split (archval) in one batched call with per-path
   BN recalibration (`jaxml.oneshot.score_paths`); tau* = argmax (Eq. 1).
3. `op_supernet/`: the operation supernet of tau* (`CRDilationSpace`: one shared 3x3 kernel per
   block at dilation 1, 2 or 3), each block's dilation drawn uniformly per step.
4. `beam.json`: greedy beam search of width `crnas.beam_size` (3) block by block
   (`jaxml.search.beam_search`), a partial architecture scored by random completions, one per
   val mini-batch, averaged; saved after every block.

Backbones: the ResNets (`crnas.backbone` resnet18 / resnet50 / resnet101 / custom, model
'crnas_resnet'; eligible allocations keep the block total and the MACs) and MobileNetV2
(`crnas.backbone='mobilenetv2'`, model 'mobilenetv2': groups 2-6 of Table 2 searched, eligible
when the MACs are within 1 %, no block total; `jaxml.spaces.crnas_mobilenet`).

The evaluator is a callback (`oneshot.classification_evaluator` here: accuracy on val); a
detection evaluator (the paper's COCO AP with Faster R-CNN + FPN, not available here) plugs in
the same way. summary.json names the found allocation and dilations, their MACs against the
baseline's, and the `train` overrides that retrain the found network
(experiments/crnas/retrain_cifar10.py).
"""

from __future__ import annotations

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from jaxml import oneshot
from jaxml.errors import ConfigError
from jaxml.methods.crnas_configs import (  # noqa: F401
  VARIANTS,
  baseline_of,
  crnas_config,
  experiment,
  validate_config,
)
from jaxml.methods.crnas_supernet import (
  BranchSampler,
  scorer,
  train_supernet,
)
from jaxml.search.beam_search import BeamSearch
from jaxml.search.beam_search import State as BeamState
from jaxml.spaces.crnas import CRDilationSpace, CRStageSpace
from jaxml.spaces.crnas_mobilenet import CRMobileDilationSpace, CRMobileStageSpace
from jaxml.training import eval_batches


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


def retrain_overrides(config, tau, dilations) -> str:
  """The command-line overrides of experiments/crnas/retrain_cifar10.py (its `mobilenetv2`
  variant for MobileNetV2) that build the found network."""
  m = config.model
  if config.crnas.backbone == "mobilenetv2":
    return (
      f"--config.model.width_mult={m.width_mult} --config.model.blocks='{(1, *tau, 1)}' "
      f"--config.model.dilations='{tuple(dilations)}'"
    )
  return (
    f"--config.model.block={m.block} --config.model.width={m.width} "
    f"--config.model.stage_sizes='{tuple(tau)}' --config.model.dilations='{tuple(dilations)}'"
  )


def _write_json(path: pathlib.Path, value) -> None:
  tmp = path.with_name(path.name + ".tmp")
  tmp.write_text(json.dumps(value, indent=1))
  tmp.replace(path)


def score_allocations(config, workdir, space, data, variables) -> dict:
  """Every eligible allocation's val accuracy (one batched call); cached in stage_scores.json."""
  path = workdir / "stage_scores.json"
  if path.exists():
    return json.loads(path.read_text())
  eligible = space.eligible()
  val = eval_batches(data.val.images, data.val.labels, config.eval_batch_size)
  acc = scorer(config, data, space.network(), variables)(eligible, val)
  # Best first; on a tie the baseline wins (no reallocation without evidence), then the
  # enumeration order.
  is_base = (eligible + 1 == np.asarray(baseline_of(config.crnas))).all(1)
  order = np.lexsort((np.arange(len(acc)), ~is_base, -acc))
  result = {
    "allocations": [space.to_string(e) for e in eligible[order]],
    "val_accuracy": acc[order].tolist(),
    "macs": space.flops(eligible[order]).tolist(),
  }
  _write_json(path, result)
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
  score = scorer(config, data, space.network(), variables)
  key = jax.random.fold_in(jax.random.key(config.seed), 0xC12)
  for t in range(len(saved["blocks"]), search.num_steps):
    state, cands = search.ask(state)
    # One uniform completion per candidate and val mini-batch (the same draws on a re-run).
    # Every candidate is scored, live or not (`tell` drops the others): one shape, one compile.
    full = np.asarray(search.complete(jax.random.fold_in(key, t), cands, c))
    per_batch = [score(full[b], tuple(x[b : b + 1] for x in val)) for b in range(c)]
    state = search.tell(state, cands, jnp.asarray(np.mean(per_batch, 0), jnp.float32))
    saved["blocks"].append(
      {
        "block": space.block_names()[t],
        "beam": np.asarray(state.beam).tolist(),
        "scores": np.asarray(state.scores).tolist(),
      }
    )
    _write_json(path, saved)
  best = np.asarray(search.best(state))
  saved["best"] = space.to_string(best)
  saved["best_dilations"] = list(space.dilation_values(best))
  _write_json(path, saved)
  return saved


def run(config, workdir: str) -> dict:
  cr = config.crnas
  root = pathlib.Path(workdir)
  # Refuse a bad space (e.g. a baseline with no equal-FLOPs alternative) before writing.
  s_space = stage_space(config, 10)
  if len(s_space.eligible()) < 2:
    raise ConfigError(
      f"crnas: only {len(s_space.eligible())} eligible allocation(s) of the baseline "
      f"{baseline_of(cr)} within max_blocks={tuple(cr.max_blocks)}: raise max_blocks"
    )
  base_enc = s_space.encode(baseline_of(cr))
  sampler = (
    BranchSampler(s_space) if cr.stage_sampling == "branches" else oneshot.UniformSampler(s_space)
  )
  s_summary, s_vars, data = train_supernet(
    config, root / "stage_supernet", s_space, sampler, base_enc
  )
  s_space = stage_space(config, data.num_classes)
  stage = score_allocations(config, root, s_space, data, s_vars)
  tau = tuple(int(t) for t in stage["allocations"][0].split("-"))
  d_space = dilation_space(config, data.num_classes, tau)
  ones = np.zeros(d_space.encoding_length, np.int32)  # dilation 1 everywhere (if listed first)
  d_summary, d_vars, data = train_supernet(
    config, root / "op_supernet", d_space, oneshot.UniformSampler(d_space), ones
  )
  beam = beam_search(config, root, d_space, data, d_vars)
  base_macs = s_space.flops(base_enc)
  found_macs = d_space.flops(ones)
  dilations = beam["best_dilations"]
  baseline_score = stage["val_accuracy"][stage["allocations"].index(s_space.to_string(base_enc))]
  summary = {
    "method": "crnas",
    "task": "CIFAR-10 classification (the paper: COCO detection, not available here)",
    "baseline_allocation": list(baseline_of(cr)),
    "found_allocation": list(tau),
    "found_dilations": dilations,
    "found_dilations_string": beam["best"],
    "baseline_macs": int(base_macs),
    "found_macs": int(found_macs),
    "macs_ratio": found_macs / base_macs,
    "eligible_allocations": len(stage["allocations"]),
    "stage_scores_top5": list(zip(stage["allocations"][:5], stage["val_accuracy"][:5])),
    "baseline_supernet_val_accuracy": baseline_score,
    "beam_scores": beam["blocks"][-1]["scores"],
    "stage_supernet": {k: s_summary.get(k) for k in ("val_accuracy", "steps", "wall_time_s")},
    "op_supernet": {k: d_summary.get(k) for k in ("val_accuracy", "steps", "wall_time_s")},
    "retrain_config": "experiments/crnas/retrain_cifar10.py"
    + (":mobilenetv2" if cr.backbone == "mobilenetv2" else ""),
    "retrain_overrides": retrain_overrides(config, tau, dilations),
  }
  _write_json(root / "summary.json", summary)
  return summary
