"""SPOS supernet on the NAS-Bench-201 space, CIFAR-10: ranking study vs the table and evolution.

Trains a weight-sharing NB201 supernet (C 16, N 5, cell ops without BN affine) with uniform
single-path sampling (one path per step; SPOS, Guo et al., ECCV 2020), 250 epochs on CIFAR-10's
train split less 5,000 val images, batch 64, SGD Nesterov lr 0.025 cosine, wd 1e-4. Then scores
200 random cells and the table's 50 best with per-path BN recalibration (200 x 128 train images)
on val and ranks them against the table (Kendall, Spearman, P@top-5 %), and runs SPOS
evolution (P 50, 20 generations, top 10) on the supernet; summary.json, ranking.json,
plots/rank_scatter.png, plots/evolution.png. Variants: `unique` (uniform over the
non-isomorphic cells, Ning et al. 2021), `flops_bins` (the released SPOS sampler), `affine`
(BN affine on), `cpu` (C 8, N 1, 16x16, 12,250 train images, 30 epochs, 8 x 64 calibration
images, 1,000 val images, evolution P 20 x 5), `fewshot` (few-shot NAS: 5 sub-supernets split on
edge 1<-0, started from the SPOS run in `spos.init_from`, a fifth of its epochs each; with `cpu`
2 epochs each) and `smoke`.

  python -m jaxml.main --config experiments/spos/nb201_cifar10.py --workdir runs/spos_nb201
  python -m jaxml.main --config experiments/spos/nb201_cifar10.py:unique --workdir runs/spos_u
  python -m jaxml.main --config experiments/spos/nb201_cifar10.py:cpu --workdir /tmp/spos_cpu
  python -m jaxml.main --config experiments/spos/nb201_cifar10.py:smoke --workdir /tmp/spos_s
  python -m jaxml.main --config experiments/spos/nb201_cifar10.py:cpu,fewshot \\
      --config.spos.init_from=/tmp/spos_cpu --workdir /tmp/fewshot_cpu
"""

import ml_collections

from jaxml.methods import spos

VARIANTS = spos.VARIANTS


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return spos.experiment("nb201", arg, "spos/nb201_cifar10")
