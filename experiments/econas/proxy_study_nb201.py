"""EcoNAS rank-consistency study on NAS-Bench-201: training proxies and zero-cost proxies vs GT.

N NAS-Bench-201 cells (stratified over the table's CIFAR-10 accuracy) are trained under each
proxy of the grid (one population of N architectures per proxy; proxy names as in EcoNAS,
`c<i>r<j>s<k>e<epochs>[n<cells>]`, ladders in jaxml/proxy.py) and scored by synflow, NASWOT,
snip, grad_norm, #params and FLOPs; every score is ranked against the table's 200-epoch CIFAR-10
test accuracy. Recipe of the NB201 ground truth (Dong & Yang, ICLR 2020): SGD + Nesterov 0.9,
lr 0.1 cosine, weight decay 5e-4, batch 256, crop + flip.

  python -m jaxml.main --config experiments/econas/proxy_study_nb201.py --workdir runs/proxy_study
  python -m jaxml.main --config experiments/econas/proxy_study_nb201.py:smoke --workdir /tmp/ps
  python -m jaxml.main --config experiments/econas/proxy_study_nb201.py:gpu --workdir runs/ps_gpu

The default grid is sized for a 2-core CPU (24 cells as fixed builds, N = 1 cell per stage: the
cheapest rung, C 4 at 8 px for one epoch of an eighth of the data, then C 8 at 16 px on a quarter
of the data for 2 and 10 epochs; zero-cost scores at C 16, N 1, 16 px); `gpu` is the wider grid
over all five factors with 30 cells and the zero-cost scores of the full network at 32 px. The
zero-cost scores of the full network on the CPU (fixed builds, one compile per cell):

  python -m jaxml.main --config experiments/econas/proxy_study_nb201.py --workdir runs/ps_zc_n5 \
    --config.proxy_study.proxies= --config.proxy_study.zero_cost_net=c0r0 \
    --config.proxy_study.zero_cost_build=fixed --config.proxy_study.zero_cost_batch=64
"""

import ml_collections

from jaxml import configs

VARIANTS = ("smoke", "gpu")

# Default: the cost/rank curve up to a proxy that ranks. C 4, 8 px, 1/8 of the data, 1 epoch
# (Spearman 0.03 on these cells, RESULTS.md) is the cheapest rung; C 8, 16 px, 1/4 of the data
# for 10 epochs ranked them at 0.88, 2 epochs of the same in between.
CPU_GRID = "c4r4s3e1n1,c2r2s2e2n1,c2r2s2e10n1"
GPU_GRID = (
  "c4r4s0e10n1,c2r2s0e10n1,c2r2s1e20n1,c0r2s1e10n1,c2r0s1e10n1,c4r4s0e60,c2r2s2e30n2,"
  "c0r0s3e10,c2r2s0e20"
)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variants = configs.parse_variants(
    arg, VARIANTS, name="econas/proxy_study_nb201", exclusive=(("smoke", "gpu"),)
  )
  c = configs.training_config("proxy_study", "nb201")
  c.optim.update(lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4, schedule="cosine")
  c.batch_size = 128  # NB201 trains with 256; 128 gives the tiny proxies twice the steps
  c.eval_batch_size = 1000
  c.data.val_size = 2000  # the proxies' val split (the ranking signal); the table is the truth
  c.population.mapping = "vmap"  # one compile for all N cells (BENCHMARKS.md, proxy study)
  c.checkpoint_every_steps = 100  # plus one at every evaluation point
  c.log_every_steps = 20
  c.proxy_study = ml_collections.ConfigDict(
    {
      "proxies": CPU_GRID,
      "num_archs": 24,
      "eval_points": 1,  # val evaluations (and checkpoints) per proxy run
      # 'array': one population of every cell through the array build (one compile); 'fixed':
      # one run per cell (its ops only, a compile each). On the 2-core CPU fixed builds train ~4x
      # faster, and win once a proxy runs a few hundred steps; the array build only for proxies
      # of a few dozen steps, where the N compiles decide (BENCHMARKS.md, "array build vs fixed
      # builds").
      "build": "fixed",
      "precision_k": 5,
      "dataset": "cifar10",  # the table's ground truth
      "table_dir": "",  # '' = $JAXML_DATA_DIR, then ../shared/data
      "zero_cost": True,
      # The network the zero-cost proxies score: C 16 (the full NB201 width), N 1, 16 px on the
      # CPU (the N 5 array build's compile alone ran past 20 min on a loaded 2-core CPU).
      "zero_cost_net": "c0r2n1",
      "zero_cost_batch": 32,  # images per NASWOT / snip / grad_norm batch
      "zero_cost_build": "array",  # 'fixed': one compile per cell (the full N 5 network on a CPU)
    }
  )
  c.population.size = c.proxy_study.num_archs
  if "gpu" in variants:
    # The full network at 32 px and Abdelfattah et al.'s batch of 64 for the zero-cost scores.
    # The array build: one compile per proxy for all 30 cells, which a GPU runs at full width.
    c.proxy_study.update(
      proxies=GPU_GRID,
      num_archs=30,
      eval_points=4,
      build="array",
      zero_cost_net="c0r0",
      zero_cost_batch=64,
    )
    c.population.size = 30
    c.batch_size = 256
    c.data.val_size = 5000
  if "smoke" in variants:
    # A minute on a 2-core CPU: 4 cells, two tiny proxies, zero-cost at C 4 N 1 8 px.
    c.proxy_study.update(
      build="array",
      proxies="c4r4s3e0.5n1,c2r4s3e0.5n1",
      num_archs=4,
      eval_points=1,
      precision_k=2,
      zero_cost_net="c4r4n1",
      zero_cost_batch=16,
    )
    c.population.size = 4
    c.data.val_size = 1000
    c.eval_batch_size = 500
    c.batch_size = 256
    c.population.fast_compile = True
  return c
