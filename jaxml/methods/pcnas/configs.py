"""The `pcnas` config block, the experiment settings and their validation (Li et al., CVPR 2020,
PC-NAS; the method: `jaxml.methods.pcnas`)."""

import ml_collections
import numpy as np

from jaxml import configs
from jaxml.methods.spos import configs as spos_configs
from jaxml.nasbench import nb201
from jaxml.spaces import NB201Space

VARIANTS = ("smoke", "cpu")
# Fields with SPOS's names and meaning (`jaxml.methods.spos`): the supernet's scoring
# (`jaxml.oneshot.val_scorer`) and the ranking study (`spos.search.ranking_archs`,
# `ranking_metrics`) read them from either block, so both methods score paths and rank cells
# identically.
SHARED_WITH_SPOS = (
  "sub_batches",
  "affine",
  "trunk_epochs",
  "trunk_steps",
  "calib_batches",
  "calib_batch_size",
  "score_val_size",
  "paths_per_call",
  "rank_random",
  "rank_top",
  "dataset",
  "table_dir",
  "max_flops",
  "max_tries",
)


def pcnas_config(**overrides) -> ml_collections.ConfigDict:
  defaults = dict(spos_configs.spos_config().to_dict())
  defaults = {k: defaults[k] for k in SHARED_WITH_SPOS}
  defaults.update(
    pool_size=5,  # P: partial models kept after each stage
    completions=16,  # uniform completions per candidate (its potential's sample)
    stage_trunks=1,  # trunks of each of the stages 1..L-1 (stage 0: every trunk before them)
    paths_per_call=64,  # paths per compiled scoring call (fixed: one compiled shape)
  )
  return ml_collections.ConfigDict({**defaults, **overrides})


def experiment(arg: str | None, name: str) -> ml_collections.ConfigDict:
  """SPOS's NB201 supernet setting (`spos.experiment`: data, model, optimiser, epochs) with the
  PC-NAS block; `cpu` / `smoke` are SPOS's `cpu` / `smoke` (one supernet) with a smaller pool."""
  v = configs.parse_variants(arg, VARIANTS, name=name, exclusive=[("smoke", "cpu")])
  c = spos_configs.experiment("nb201", ",".join(sorted(v)) or None, name)
  c.method = "pcnas"
  c.pcnas = pcnas_config(**{k: c.spos[k] for k in SHARED_WITH_SPOS if k != "paths_per_call"})
  del c["spos"]
  c.population.size = 1
  if "cpu" in v:
    c.pcnas.update(pool_size=4, completions=8, paths_per_call=40)
  if "smoke" in v:
    c.pcnas.update(pool_size=2, completions=2, paths_per_call=8, rank_random=10, rank_top=4)
    c.update(num_steps=14, num_epochs=-1.0)
    c.pcnas.update(trunk_steps=2, trunk_epochs=0.0)
  return c


def _trunks_estimate(config) -> int | None:
  """The run's number of trunks from the config alone (None if the units differ)."""
  p = config.pcnas
  if config.num_steps > 0 and p.trunk_steps > 0:
    return -(-int(config.num_steps) // int(p.trunk_steps))
  if config.num_steps <= 0 and p.trunk_steps <= 0 and p.trunk_epochs > 0:
    return int(np.ceil(config.num_epochs / p.trunk_epochs - 1e-9))
  return None


def validate_config(config) -> None:
  p, check = config.pcnas, configs.check
  check(
    config.model.name == "nb201",
    f"pcnas searches the 'nb201' space: model.name must be 'nb201' (got {config.model.name!r})",
  )
  configs.validate_training_config(config)
  check(config.model.get("arch", "") == "", "pcnas trains the supernet: model.arch must be ''")
  check(config.model.dtype == "float32", "pcnas: the supernet is float32 only")
  check(config.population.size == 1, "pcnas trains one supernet: population.size = 1")
  check(config.data.val_size > 0, "pcnas scores paths on the val split: data.val_size > 0")
  for key in ("pool_size", "completions", "stage_trunks", "sub_batches", "paths_per_call"):
    check(int(p[key]) >= 1, f"pcnas.{key} must be >= 1, got {p[key]}")
  check(1 <= p.max_tries <= 100, f"pcnas.max_tries must be in 1..100, got {p.max_tries}")
  check(p.completions <= 4096, f"pcnas.completions must be at most 4096, got {p.completions}")
  check(p.pool_size <= 625, f"pcnas.pool_size must be at most 625, got {p.pool_size}")
  check(p.calib_batches >= 0 and p.calib_batch_size >= 1, "pcnas.calib_batches must be >= 0")
  check(
    p.calib_batches * p.calib_batch_size <= 1_000_000,
    "pcnas.calib_batches x calib_batch_size must be at most 1,000,000 images",
  )
  check(p.score_val_size >= 0, f"pcnas.score_val_size must be >= 0, got {p.score_val_size}")
  check(p.max_flops >= 0, f"pcnas.max_flops (MACs) must be >= 0, got {p.max_flops}")
  check(p.rank_random >= 10, f"pcnas.rank_random must be >= 10, got {p.rank_random}")
  check(p.rank_top >= 0, f"pcnas.rank_top must be >= 0, got {p.rank_top}")
  check(p.rank_random + p.rank_top <= 15625, "pcnas.rank_random + rank_top must be <= 15,625")
  check(p.trunk_steps > 0 or p.trunk_epochs > 0, "set pcnas.trunk_epochs or trunk_steps > 0")
  check(p.dataset in nb201.DATASETS, f"pcnas.dataset={p.dataset!r}; valid: {nb201.DATASETS}")
  check(
    config.batch_size % p.sub_batches == 0,
    f"batch_size={config.batch_size} must split into pcnas.sub_batches={p.sub_batches} parts",
  )
  trunks = _trunks_estimate(config)
  check(
    trunks is not None,
    "pcnas: give the trunk in the run's unit (pcnas.trunk_steps with num_steps, "
    "pcnas.trunk_epochs with num_epochs)",
  )
  need = (NB201Space().encoding_length - 1) * int(p.stage_trunks) + 1
  check(
    trunks >= need,
    f"pcnas: the run has {trunks} trunks; the 6 NB201 stages need at least {need} "
    f"(stage_trunks={p.stage_trunks} each for stages 1-5, >= 1 for stage 0)",
  )
