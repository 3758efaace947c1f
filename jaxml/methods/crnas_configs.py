"""The configs of `jaxml.methods.crnas`: its `config.crnas` fields, the experiment variants
(smoke / cpu / gpu) and the baseline allocation of a backbone."""

import ml_collections

from jaxml import configs
from jaxml.spaces.crnas import BASELINES, BLOCK_OF, DILATIONS

VARIANTS = ("smoke", "cpu", "gpu")
STAGE_SAMPLINGS = ("branches", "eligible")


def crnas_config(**overrides) -> ml_collections.ConfigDict:
  defaults = dict(
    backbone="resnet18",  # resnet18 | resnet50 | resnet101 | custom: the baseline allocation
    baseline=(),  # blocks per stage when backbone='custom' (e.g. tiny smoke nets)
    max_blocks=(5, 5, 5, 5),  # T_i: the stage supernet's blocks per stage (tau_i in 1..T_i)
    stage_sampling="branches",  # branches (one per stage, uniform; the paper) | eligible
    flops_tolerance=0.01,  # eligible: MACs within this fraction of the baseline's
    dilations=DILATIONS,
    beam_size=3,  # K of the greedy beam search (the paper's 3)
    score_batches=8,  # c: val mini-batches (one random completion each) per partial arch
    calib_batches=4,  # train batches of per-path BN recalibration (0: the supernet's stats)
    paths_per_chunk=0,  # paths per vmapped chunk when scoring (0: all at once)
  )
  return ml_collections.ConfigDict({**defaults, **overrides})


def experiment(backbone: str, arg: str | None, name: str) -> ml_collections.ConfigDict:
  """CRNAS on CIFAR-10 for `backbone`: both supernets 100 epochs (GPU); `cpu` and `smoke`
  shrink width, resolution and data (see each experiment file)."""
  v = configs.parse_variants(arg, VARIANTS, name=name, exclusive=[("smoke", "cpu")])
  c = configs.training_config("crnas", "crnas_resnet")
  c.crnas = crnas_config(backbone=backbone)
  c.model.update(block=BLOCK_OF[backbone], stage_sizes=BASELINES[backbone])
  if backbone == "resnet50":
    c.crnas.max_blocks = (6, 8, 10, 6)
  c.data.update(val_size=5000)  # archval: held out of train for every score
  c.optim.update(lr=0.1, weight_decay=5e-4, warmup_epochs=1.0)
  c.update(batch_size=128, eval_batch_size=500, num_epochs=100.0, log_every_steps=50)
  c.eval_every_epochs = 5.0
  c.checkpoint_every_epochs = 5.0
  c.population.update(size=1)
  if "gpu" in v:
    c.num_epochs = 60.0
  if "cpu" in v:
    c.model.width = 8
    c.data.update(sample_ratio=0.1, val_size=1000, resolution=16)
    c.crnas.update(score_batches=4, calib_batches=2)
    c.update(batch_size=64, eval_batch_size=250, num_epochs=15.0, log_every_steps=20)
    c.eval_every_epochs = 5.0
    c.checkpoint_every_epochs = 1.0
  if "smoke" in v:
    c.model.width = 2
    c.data.update(sample_ratio=0.004, val_size=64, resolution=8)
    c.crnas.update(max_blocks=(2, 2, 3, 2), score_batches=2, calib_batches=1)
    c.model.stage_sizes = (1, 1, 2, 1)
    c.crnas.backbone = "custom"
    c.crnas.baseline = (1, 1, 2, 1)
    c.update(batch_size=16, eval_batch_size=32, num_steps=6, log_every_steps=3)
    c.optim.warmup_epochs = 0.0
    c.eval_every_steps = 3
    c.checkpoint_every_steps = 3
    c.population.update(mapping="loop", fast_compile=True)
  return c


def baseline_of(cfg) -> tuple[int, ...]:
  if cfg.backbone == "custom":
    return tuple(cfg.baseline)
  return BASELINES[cfg.backbone]
