"""CRNAS: computation reallocation across stages and dilations (Liang et al., "Computation
Reallocation for Object Detection", ICLR 2020, arXiv 1912.11234, §3), on one-shot supernets.

Four phases in one run directory (each resumable; a re-run continues where it stopped):

1. `stage_supernet/`: the stage supernet (`jaxml.spaces.crnas.CRStageSpace`, T_i blocks per
   stage), a K = 1 trunk-loop run with `jaxml.oneshot.SampledPath`: each step draws one branch
   (block count) per stage (`crnas.stage_sampling='branches'`, the paper's) or one eligible
   allocation (`'eligible'`); its val metric is the baseline allocation's path.
2. `stage_scores.json`: every eligible allocation (sum tau = N, tau_i >= 1, MACs within 1 % of
   the baseline) scored on the held-out val split (archval) in one batched call with per-path
   BN recalibration (`jaxml.oneshot.PathScorer`); tau* = argmax (Eq. 1).
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

import pathlib

import numpy as np

from jaxml import oneshot
from jaxml.errors import ConfigError
from jaxml.methods.crnas import report
from jaxml.methods.crnas.configs import (  # noqa: F401
  VARIANTS,
  baseline_of,
  crnas_config,
  experiment,
  validate_config,
)
from jaxml.methods.crnas.report import retrain_overrides  # noqa: F401
from jaxml.methods.crnas.search import (  # noqa: F401
  BranchSampler,
  beam_search,
  dilation_space,
  score_allocations,
  stage_space,
  train_supernet,
)
from jaxml.metrics.writers import write_json_atomic


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
  summary = report.summary(config, stage, beam, base_enc, s_space, d_space, s_summary, d_summary)
  write_json_atomic(root / "summary.json", summary)
  return summary
