"""SPOS on the ShuffleNetV2 choice-block space (SPOS / DetNAS), CIFAR-10: supernet + evolution.

Trains the SPOS supernet of 20 choice blocks x 4 choices (ShuffleNetV2 3x3 / 5x5 / 7x7,
Xception-like; widths 16 / 64 / 160 / 320 / 640 / 1024, CIFAR stem; Guo et al., ECCV 2020) with
uniform single-path sampling, 250 epochs on CIFAR-10's train split less 5,000 val images, then
runs SPOS evolution (P 50, 20 generations, top 10, crossover + mutation 0.1) with fitness = val
accuracy after per-path BN recalibration (200 x 128 train images). There is no ground truth for
this space, so no ranking study; set `--config.spos.max_flops` (MACs per image) for SPOS's
FLOPs-constrained search. DetNAS trains the same space on COCO detection, not available offline;
its backbone search is this one with a detection evaluator. Variants: `flops_bins`, `affine`,
`cpu` (width x0.25, blocks 1/1/2/1, 16x16, 30 epochs) and `smoke`.

  python -m jaxml.main --config experiments/spos/shufflenet_cifar10.py --workdir runs/spos_shuffle
  python -m jaxml.main --config experiments/spos/shufflenet_cifar10.py:cpu --workdir /tmp/spos_sc
  python -m jaxml.main --config experiments/spos/shufflenet_cifar10.py:smoke --workdir /tmp/sps
"""

import ml_collections

from jaxml.methods import spos

VARIANTS = spos.SHUFFLENET_VARIANTS


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return spos.experiment("shufflenet", arg, "spos/shufflenet_cifar10")
