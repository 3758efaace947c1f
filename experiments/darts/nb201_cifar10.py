"""DARTS (1st / 2nd order) and GDAS on the NAS-Bench-201 space, CIFAR-10; true accuracy per epoch.

Searches the NB201 cell with the relaxed `TinyNetwork` (C 16, N 5; cell ops without BN affine),
three seeds as one population, 50 epochs on CIFAR-10's train split cut in two halves of 25k
(weights / alphas), batch 64: the NAS-Bench-201 paper's DARTS setting (it reports the collapse to
an all-skip cell, 54.30 test for both orders). After every epoch the derived cell (argmax without
`none`) is looked up in the NAS-Bench-201 table (metrics.jsonl, summary.json, plots/alphas.png).
Variants: `second_order` (eq. 7-8 unrolled step), `gdas` (Gumbel straight-through sampling,
tau 10 -> 0.1), `darts_minus` (DARTS- auxiliary skip), `cpu` (C 8, N 1, 16x16, 6,400 + 6,400
images, 20 epochs = 2,000 bilevel steps, alpha lr 3e-3, one copy per seed) and `smoke`.

  python -m jaxml.main --config experiments/darts/nb201_cifar10.py --workdir runs/darts_nb201
  python -m jaxml.main --config experiments/darts/nb201_cifar10.py:second_order --workdir runs/d2
  python -m jaxml.main --config experiments/darts/nb201_cifar10.py:gdas --workdir runs/gdas_nb201
  python -m jaxml.main --config experiments/darts/nb201_cifar10.py:cpu --workdir /tmp/darts_cpu
  python -m jaxml.main --config experiments/darts/nb201_cifar10.py:smoke --workdir /tmp/darts_s
"""

import ml_collections

from jaxml.methods import darts

VARIANTS = darts.VARIANTS


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return darts.experiment("nb201", arg, "darts/nb201_cifar10")
