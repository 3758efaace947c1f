"""CRNAS on CIFAR-10 from ResNet-18 (2/2/2/2): stage reallocation then dilation beam search.

Classification stands in for the paper's COCO detection (Faster R-CNN + FPN), which cannot be
downloaded here; the evaluator is a callback, so a detection evaluator plugs in the same way.
The stage supernet has T_i = 5 blocks per stage, which covers all 35 allocations of 8 blocks
with tau_i >= 1 (every one has ResNet-18's MACs); both supernets train 100 epochs (`gpu`: 60)
on 45k images, 5k held out (archval) for every score; beam search K = 3 over dilations 1/2/3.
Variants: `cpu` (width 8, 16x16, 10 % of the data, 15 epochs per supernet), `smoke` (a tiny
1/1/2/1 net, seconds), `gpu`. Retrain the found network vs the baseline with the `train`
method: experiments/crnas/retrain_cifar10.py.

  python -m jaxml.main --config experiments/crnas/resnet18_cifar10.py --workdir runs/crnas_r18
  python -m jaxml.main --config experiments/crnas/resnet18_cifar10.py:gpu --workdir runs/crnas_g
  python -m jaxml.main --config experiments/crnas/resnet18_cifar10.py:cpu --workdir /tmp/crnas_c
  python -m jaxml.main --config experiments/crnas/resnet18_cifar10.py:smoke --workdir /tmp/crs
"""

import ml_collections

from jaxml.methods import crnas

VARIANTS = crnas.VARIANTS


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return crnas.experiment("resnet18", arg, "crnas/resnet18_cifar10")
