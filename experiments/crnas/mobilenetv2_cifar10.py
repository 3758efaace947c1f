"""CRNAS on CIFAR-10 from MobileNetV2 (Table 2): stage reallocation then dilation beam search.

Groups 2-6 of Sandler et al.'s Table 2 (24/32/64/96/160 channels, 2/3/4/3/3 blocks) are
reallocated; groups 1 and 7 keep one block. A regular block's MACs differ between groups, so an
allocation is eligible when its MACs are within 1 % of the baseline's (no block total; the paper
reports MobileNetV2 only at equal FLOPs: 32.2 -> 33.9 COCO AP, 121.1 vs 121.4 GFLOPs). The
stage supernet has T = 4/5/6/5/5 blocks per group (108 eligible allocations at 32 px); every
block's depthwise conv then takes dilation 1/2/3 (beam search, K = 3, 17 blocks for the
baseline). Classification stands in for COCO detection, as in resnet18_cifar10.py. Variants:
`gpu` (width 1.0, 32x32, 60 epochs per supernet), `cpu` (width 0.25, 16x16, 10 % of the data,
5 epochs per supernet, T = 3/4/5/4/4: 46 eligible; ~30 min on 2 cores), `smoke` (width 0.1, 8x8,
groups 1/1/2/1/1).
Retrain found vs baseline: experiments/crnas/retrain_cifar10.py:mobilenetv2 with the overrides
of summary.json.

  python -m jaxml.main --config experiments/crnas/mobilenetv2_cifar10.py:gpu --workdir runs/cr_mb
  python -m jaxml.main --config experiments/crnas/mobilenetv2_cifar10.py:cpu --workdir /tmp/crmb
  python -m jaxml.main --config experiments/crnas/mobilenetv2_cifar10.py:smoke --workdir /tmp/crs
"""

import ml_collections

from jaxml.methods import crnas

VARIANTS = crnas.VARIANTS


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return crnas.experiment("mobilenetv2", arg, "crnas/mobilenetv2_cifar10")
