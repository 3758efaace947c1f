"""PC-NAS (progressive space shrinking with a partial model pool) on NAS-Bench-201, CIFAR-10.

Trains SPOS's NB201 supernet (experiments/spos/nb201_cifar10.py: C 16, N 5, 32 px, cell ops
without BN affine, one path per step, 250 epochs on CIFAR-10's train split less 5,000 val
images, batch 64, SGD Nesterov lr 0.025 cosine, wd 1e-4); the first 245 epochs sample paths
uniformly (stage 0), then one epoch per stage while the pool of the top-5 partial cells fixes one
more edge per stage (potential = mean recalibrated val accuracy of 16 paired uniform
completions). The final pool holds whole cells; the first is looked up in the NAS-Bench-201
table (summary.json `returned_true_accuracy`, `stages`, `oracle_true_accuracy`, and SPOS's
`ranking` study of the final supernet: 200 random cells + the table's 50 best). Variants: `cpu`
(SPOS's cpu schedule: C 8, N 1, 16 px, 12,250 train images, 30 epochs; pool 4, 8 completions)
and `smoke`.

  python -m jaxml.main --config experiments/pcnas/nb201_cifar10.py --workdir runs/pcnas_nb201
  python -m jaxml.main --config experiments/pcnas/nb201_cifar10.py:cpu --workdir /tmp/pcnas_cpu
  python -m jaxml.main --config experiments/pcnas/nb201_cifar10.py:smoke --workdir /tmp/pcnas_s
"""

import ml_collections

from jaxml.methods import pcnas

VARIANTS = pcnas.VARIANTS


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return pcnas.experiment(arg, "pcnas/nb201_cifar10")
