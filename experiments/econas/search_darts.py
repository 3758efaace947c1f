"""EcoNAS hierarchical proxy evolution in the DARTS cell space (the official code's space).

The official EcoNAS search (DongzhanZhou/EcoNAS search/) evolves DARTS genotypes (4 nodes x 2
inputs, 8 primitives including `none`) under the c4r4s0e60 proxy: 36 / 4 = 9 initial channels,
8 x 8 images, all training samples, 60 epochs in three stages of E = 20, 20 cells, batch 384, SGD
lr 0.1, momentum 0.9, weight decay 3e-4, gradient clip 5; 16 initial networks then 100 cycles
of 16 children (6 / 5 / 5 parents) and 8 + 4 promotions. This file is that search on
`darts_cells` (`jaxml/methods/econas_search/`); fitness is accuracy on a val split held out of
the train set (the official code uses the CIFAR-10 test set). There is no ground truth table for
this space: the found genotype is the result (retraining it is a separate run). Variants:

- (none): the official setting above. GPU-sized.
- `smoke`: seconds to minutes on a CPU (mostly compiling the array build): 2 channels, 3 cells,
  K 4, 3 cycles of 2 steps.
- `random`: random children on the same pools, promotions and schedule (baseline).

  python -m jaxml.main --config experiments/econas/search_darts.py --workdir runs/econas_darts
  python -m jaxml.main --config experiments/econas/search_darts.py:smoke --workdir /tmp/ec_darts
"""

import ml_collections

from jaxml import configs
from jaxml.methods import econas_search

VARIANTS = ("smoke", "random")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variants = configs.parse_variants(arg, VARIANTS, name="econas/search_darts")
  c = econas_search.base_config("darts_cells")
  c.model.update(channels=9, layers=20)
  if "smoke" in variants:
    c.model.update(channels=2, layers=3)
    econas_search.shrink_for_smoke(c)
  if "random" in variants:
    c.econas.random_children = True
  return c
