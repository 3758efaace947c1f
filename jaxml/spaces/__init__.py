"""jaxml.spaces: architecture search spaces as data.

Each space (a `SearchSpace`) encodes an architecture as a fixed-length int32 vector and offers
sampling / mutation / crossover (jittable), validation, the paper's string notation, analytic
FLOPs (MACs) and parameter counts, and one Flax network that takes the encoding as an array
(`space.network()`) or computes only one architecture's ops (`space.network(arch=enc)`).

- `NB201Space`: NAS-Bench-201 cell space (Dong & Yang, ICLR 2020).
- `DARTSSpace`: DARTS cell space (Liu et al., ICLR 2019), with `DARTS_V1`, `DARTS_V2`.
- `EcoNASSpace`: NASNet-style cell space with the 13 NASNet ops, searched by EcoNAS
  (Zhou et al., CVPR 2020).
- `ShuffleNetSPOSSpace`: the ShuffleNetV2 choice-block space of SPOS (Guo et al., ECCV 2020) and
  DetNAS (Chen et al., NeurIPS 2019).
- `CRStageSpace`, `CRDilationSpace`: CRNAS's stage allocations and per-block dilations of a
  ResNet (Liang et al., ICLR 2020).
"""

from jaxml.spaces.base import SearchSpace
from jaxml.spaces.counting import count_macs, count_params, module_costs
from jaxml.spaces.crnas import CRDilationSpace, CRStageSpace
from jaxml.spaces.darts import DARTS_V1, DARTS_V2, DARTSSpace, Genotype
from jaxml.spaces.econas import EcoNASSpace
from jaxml.spaces.nb201 import NB201Space
from jaxml.spaces.shufflenet_spos import ShuffleNetSPOSSpace

__all__ = [
  "CRDilationSpace",
  "CRStageSpace",
  "DARTSSpace",
  "DARTS_V1",
  "DARTS_V2",
  "EcoNASSpace",
  "Genotype",
  "NB201Space",
  "SearchSpace",
  "ShuffleNetSPOSSpace",
  "count_macs",
  "count_params",
  "module_costs",
]
