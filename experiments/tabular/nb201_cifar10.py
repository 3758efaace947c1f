"""Tabular NAS on NAS-Bench-201 (CIFAR-10): random search, REA, REINFORCE and SPOS evolution.

Every method gets `queries` table lookups per run and returns the best architecture it queried;
1,000 independent seeds per method run in one jitted, vmapped call. The objective is the table's
200-epoch CIFAR-10 *test* accuracy (noise-free; the table has no validation accuracies), so the
numbers are not like-for-like with the NAS-Bench-201 paper, which searches on 12-epoch validation
accuracy under a 12,000 s simulated budget.

Hyper-parameters follow the published code where it states them:
- REA (Real et al. 2019): population 10, tournament sample 3, one-edge mutation
  (D-X-Y/AutoDL-Projects scripts-search/NAS-Bench-201-algos/R-EA.sh usage, NATS-algos README).
- REINFORCE: factorised categorical policy over the 6 edges, one architecture per step, reward =
  accuracy, EMA baseline momentum 0.9, Adam lr 0.01 (NATS-algos README; the NAS-Bench-201-era
  script's usage line shows 0.001 and its grid script tries 0.01-0.5).
- SPOS evolution (Guo et al. 2020, Alg. 1): population 50, top-k 10, crossover 25, mutation 25
  with per-gene probability 0.1, duplicates rejected.

  python -m jaxml.main --config experiments/tabular/nb201_cifar10.py --workdir runs/tabular
  python -m jaxml.main --config experiments/tabular/nb201_cifar10.py:smoke --workdir /tmp/tabular
"""

import ml_collections

from jaxml import configs

VARIANTS = ("smoke",)  # the `:arg` values this file accepts (comma-separated)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.method = "tabular"
  c.seed = 0
  c.num_seeds = 1000
  c.queries = 150  # the headline budget: table lookups per run
  c.query_sweep = (25, 50, 100, 150, 300, 500)  # also reported (prefixes of one longer run)
  c.methods = ("random", "rea", "reinforce", "spos")
  c.dataset = "cifar10"  # the search objective; the other two datasets are reported as transfer
  c.data = ml_collections.ConfigDict({"dir": ""})  # '' = $JAXML_DATA_DIR, then ../shared/data
  c.rea = ml_collections.ConfigDict({"population_size": 10, "sample_size": 3})
  c.reinforce = ml_collections.ConfigDict({"learning_rate": 0.01, "ema_decay": 0.9})
  c.spos = ml_collections.ConfigDict(
    {"population_size": 50, "topk": 10, "mutation_prob": 0.1, "max_tries": 10}
  )
  if "smoke" in configs.parse_variants(arg, VARIANTS, name="tabular/nb201_cifar10"):
    # Seconds on a 2-core CPU (mostly compile time).
    c.num_seeds = 50
    c.queries = 50
    c.query_sweep = (25, 50)
  return c
