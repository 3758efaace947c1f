"""What a CRNAS run reports (`jaxml.methods.crnas`): the summary (found allocation and
dilations, their MACs against the baseline's) and the `train` overrides that retrain the found
network (experiments/crnas/retrain_cifar10.py)."""

import numpy as np

from jaxml.methods.crnas.configs import baseline_of


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


def summary(config, stage: dict, beam: dict, base_enc, s_space, d_space, s_summary, d_summary):
  """summary.json of a finished search: `stage` = the scored allocations (best first), `beam`
  the beam search's record, `*_summary` the two supernet runs'."""
  cr = config.crnas
  tau = tuple(int(t) for t in stage["allocations"][0].split("-"))
  ones = np.zeros(d_space.encoding_length, np.int32)  # dilation 1 everywhere (if listed first)
  base_macs, found_macs = s_space.flops(base_enc), d_space.flops(ones)
  dilations = beam["best_dilations"]
  baseline_score = stage["val_accuracy"][stage["allocations"].index(s_space.to_string(base_enc))]
  return {
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
