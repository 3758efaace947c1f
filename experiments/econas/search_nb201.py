"""EcoNAS hierarchical proxy evolution on NAS-Bench-201 cells, scored by the table's test accuracy.

Networks train in a reduced setting (the proxy: base channels C, cells per stage N, resolution r,
sample ratio s) on one cosine schedule of 3E epochs, in stages of E (`jaxml/methods/
econas_search.py`). Fitness = accuracy on a val split held out of the train set; the found cell's
200-epoch CIFAR-10 test accuracy is looked up in the NAS-Bench-201 table. Optimizer as the
official search/train.py (SGD lr 0.1, momentum 0.9, weight decay 3e-4, gradient clip 5, batch
384 in the full run). Variants (comma-separated):

- (none): the official search on the NB201 skeleton: c4r4 (C 4 = 16 / 4, 8 px), all samples,
  N 5, E 20 of 60 epochs, 16 initial + 100 cycles of 16 children and 8 + 4 promotions (K 28).
  GPU-sized (days on a CPU).
- `cpu`: ~0.35 CPU-hours (27 min wall with two searches sharing 2 cores): a proxy that ranks
  NB201 cells (C 8, N 1, 16 px, a quarter of the train images; the rank study's c2r2s2 class,
  RESULTS.md), E 2 of 6 epochs, each network through its fixed build; parents 2 / 1 / 1 and
  promotions 2 + 2 (K 8), 8 initial networks, 5 cycles: 48 trainings (about 30 networks: free
  promotion slots of the first cycles train children).
- `gpu`: C 8, N 1, 16 px, half the train images, E 4 of 12, K 28 and 16 initial (official
  pools), 20 cycles.
- `smoke`: seconds: K 4, 3 initial networks, 3 cycles of 2 steps per stage on 1,000 images.
- `random`: random children on the same pools, promotions and schedule (the baseline at equal
  cost and equal number of trained networks).
- `warm`: the initial networks are the synflow-best 8 of 64 random cells scored at C 16, N 1,
  16 px (`econas_search/warm_start.py`): a zero-cost proxy picks where the search starts.

  python -m jaxml.main --config experiments/econas/search_nb201.py:cpu --workdir runs/econas_cpu
  python -m jaxml.main --config experiments/econas/search_nb201.py:cpu,random --workdir runs/rs_cpu
  python -m jaxml.main --config experiments/econas/search_nb201.py:cpu,warm --workdir runs/warm_cpu
  python -m jaxml.main --config experiments/econas/search_nb201.py:smoke --workdir /tmp/econas
  python -m jaxml.main --config experiments/econas/search_nb201.py:gpu --workdir runs/econas_gpu
"""

import ml_collections

from jaxml import configs
from jaxml.methods import econas_search

VARIANTS = ("smoke", "cpu", "gpu", "random", "warm")
SIZES = (("smoke", "cpu"), ("smoke", "gpu"), ("cpu", "gpu"))


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variants = configs.parse_variants(
    arg, VARIANTS, name="econas/search_nb201", exclusive=list(SIZES)
  )
  c = econas_search.base_config("nb201")
  c.model.update(channels=4, cells_per_stage=5)
  if "smoke" in variants:
    c.model.update(channels=4, cells_per_stage=1)
    econas_search.shrink_for_smoke(c)
  if "cpu" in variants:
    c.model.update(channels=8, cells_per_stage=1)
    # 8 initial networks fill cycle 0's K slots: 8 + 5 x 8 = 48 trainings.
    c.econas.update(
      cycles=5, initial_size=8, parents=(2, 1, 1), promote=(2, 2), max_age=4, build="fixed"
    )
    c.population.update(size=8, mapping="vmap")
    c.data.update(resolution=16, val_size=2000, sample_ratio=0.25)
    c.update(batch_size=128, eval_batch_size=1000, num_epochs=6.0)
  if "gpu" in variants:
    c.model.update(channels=8, cells_per_stage=1)
    c.econas.update(cycles=20)
    c.data.update(resolution=16, sample_ratio=0.5)
    c.update(batch_size=256, num_epochs=12.0)
  if "random" in variants:
    c.econas.random_children = True
  if "warm" in variants:
    c.econas.update(warm_start="synflow", warm_start_pool=64)
  return c
