"""DARTS (1st / 2nd order) and GDAS on the DARTS cell space, CIFAR-10 search (8 cells, C 16).

The DARTS paper's search network (Liu et al., ICLR 2019, §3.1: 8 cells, reductions at 1/3 and
2/3, 16 initial channels, 50 epochs, batch 64, CIFAR-10 train split in two halves of 25k), three
seeds as one population. There is no table for this space: the derived genotype per epoch
(top-2 inputs per node, argmax op without `none`) is recorded, not its accuracy. Variants:
`second_order`, `gdas`, `cpu` (C 8, 5 cells, 16x16, 6,400 + 6,400 images, 20 epochs, alpha lr
3e-3), `smoke`.

  python -m jaxml.main --config experiments/darts/darts_cifar10.py --workdir runs/darts_cells
  python -m jaxml.main --config experiments/darts/darts_cifar10.py:second_order --workdir runs/d2c
  python -m jaxml.main --config experiments/darts/darts_cifar10.py:gdas --workdir runs/gdas_cells
  python -m jaxml.main --config experiments/darts/darts_cifar10.py:smoke --workdir /tmp/darts_cs
"""

import ml_collections

from jaxml.methods import darts

VARIANTS = darts.VARIANTS


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return darts.experiment("darts", arg, "darts/darts_cifar10")
