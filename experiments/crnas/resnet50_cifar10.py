"""CRNAS on CIFAR-10 from ResNet-50 (3/4/6/3 bottlenecks): stage reallocation then dilations.

The stage supernet has T = 6/8/10/6 blocks per stage (the paper's reusable supernet goes to
T_1, T_2 = 10 and sparse T_3, T_4 lists; contiguous ranges here): 243 of the allocations of 16
blocks with tau_i >= 1 fit, all with ResNet-50's MACs. Otherwise as resnet18_cifar10.py
(CIFAR-10 stands in for COCO; 100 epochs per supernet, `gpu` 60, `cpu`, `smoke`).

  python -m jaxml.main --config experiments/crnas/resnet50_cifar10.py --workdir runs/crnas_r50
  python -m jaxml.main --config experiments/crnas/resnet50_cifar10.py:cpu --workdir /tmp/cr50
  python -m jaxml.main --config experiments/crnas/resnet50_cifar10.py:smoke --workdir /tmp/cr50s
"""

import ml_collections

from jaxml.methods import crnas

VARIANTS = crnas.VARIANTS


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return crnas.experiment("resnet50", arg, "crnas/resnet50_cifar10")
