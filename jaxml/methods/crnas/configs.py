"""The configs of `jaxml.methods.crnas`: its `config.crnas` fields, the experiment variants
(smoke / cpu / gpu) and the baseline allocation of a backbone (ResNets: 4 stages, model
'crnas_resnet'; MobileNetV2: Table 2's groups 2-6, model 'mobilenetv2')."""

import ml_collections

from jaxml import configs, models
from jaxml.spaces.crnas import BASELINES, BLOCK_OF, DILATIONS
from jaxml.spaces.crnas_mobilenet import MOBILENET_BASELINE

VARIANTS = ("smoke", "cpu", "gpu")
BACKBONES = (*BASELINES, "mobilenetv2", "custom")
STAGE_SAMPLINGS = ("branches", "eligible")


def crnas_config(**overrides) -> ml_collections.ConfigDict:
  defaults = dict(
    backbone="resnet18",  # resnet18 | resnet50 | resnet101 | mobilenetv2 | custom (a ResNet)
    # Blocks per searched stage: needed for 'custom' (4 ResNet stages), optional for
    # 'mobilenetv2' (groups 2-6; () = Table 2's 2/3/4/3/3), unused otherwise. Tiny smoke nets.
    baseline=(),
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
  mobile = backbone == "mobilenetv2"
  c = configs.training_config("crnas", "mobilenetv2" if mobile else "crnas_resnet")
  c.crnas = crnas_config(backbone=backbone)
  if mobile:
    c.model.update(blocks=(1, *MOBILENET_BASELINE, 1), dilations=())
    c.crnas.max_blocks = (4, 5, 6, 5, 5)  # baseline + 2 (+ 3 for the 32-channel group)
    c.optim.update(lr=0.1, weight_decay=4e-5, warmup_epochs=1.0)  # Sandler et al. §6.1's wd
  else:
    c.model.update(block=BLOCK_OF[backbone], stage_sizes=BASELINES[backbone])
    c.optim.update(lr=0.1, weight_decay=5e-4, warmup_epochs=1.0)
  if backbone == "resnet50":
    c.crnas.max_blocks = (6, 8, 10, 6)
  c.data.update(val_size=5000)  # archval: held out of train for every score
  c.update(batch_size=128, eval_batch_size=500, num_epochs=100.0, log_every_steps=50)
  c.eval_every_epochs = 5.0
  c.checkpoint_every_epochs = 5.0
  c.population.update(size=1)
  if "gpu" in v:
    c.num_epochs = 60.0
  if "cpu" in v:
    if mobile:
      c.model.width_mult = 0.25
      c.crnas.max_blocks = (3, 4, 5, 4, 4)  # baseline + 1: 46 eligible allocations at 16 px
    else:
      c.model.width = 8
    c.data.update(sample_ratio=0.1, val_size=1000, resolution=16)
    c.crnas.update(score_batches=4, calib_batches=2)
    c.update(batch_size=64, eval_batch_size=250, num_epochs=15.0, log_every_steps=20)
    c.eval_every_epochs = 5.0
    c.checkpoint_every_epochs = 1.0
    if mobile:  # 17+ blocks of depthwise convs are slow on CPU: sized for ~30 min on 2 cores
      c.num_epochs = 5.0
      c.crnas.score_batches = 3
  if "smoke" in v:
    c.data.update(sample_ratio=0.004, val_size=64, resolution=8)
    c.crnas.update(score_batches=2, calib_batches=1)
    if mobile:  # groups 2-6 at 1/1/2/1/1 blocks, every channel count rounded up to 8
      c.model.update(width_mult=0.1, blocks=(1, 1, 1, 2, 1, 1, 1))
      # Only groups 4 and 6 grow: the two allocations within 1 % (1-1-2-1-1, 1-1-1-1-2).
      c.crnas.update(baseline=(1, 1, 2, 1, 1), max_blocks=(1, 1, 2, 1, 2))
    else:
      c.model.update(width=2, stage_sizes=(1, 1, 2, 1))
      c.crnas.update(backbone="custom", baseline=(1, 1, 2, 1), max_blocks=(2, 2, 3, 2))
    c.update(batch_size=16, eval_batch_size=32, num_steps=6, log_every_steps=3)
    c.optim.warmup_epochs = 0.0
    c.eval_every_steps = 3
    c.checkpoint_every_steps = 3
    c.population.update(mapping="loop", fast_compile=True)
  return c


def baseline_of(cfg) -> tuple[int, ...]:
  """Blocks per searched stage of the baseline (the FLOPs the search keeps)."""
  if cfg.backbone == "custom" or (cfg.backbone == "mobilenetv2" and len(cfg.baseline)):
    return tuple(cfg.baseline)
  if cfg.backbone == "mobilenetv2":
    return MOBILENET_BASELINE
  return BASELINES[cfg.backbone]


def validate_config(config) -> None:
  cr, check = config.crnas, configs.check
  check(cr.backbone in BACKBONES, f"crnas.backbone={cr.backbone!r}; valid: {', '.join(BACKBONES)}")
  mobile = cr.backbone == "mobilenetv2"
  stages = 5 if mobile else 4
  if cr.backbone == "custom" or (mobile and len(cr.baseline)):
    check(
      len(cr.baseline) == stages and min(cr.baseline) >= 1,
      f"crnas.baseline={tuple(cr.baseline)} must be {stages} block counts >= 1 for "
      f"crnas.backbone={cr.backbone!r}",
    )
  family = "mobilenetv2" if mobile else "crnas_resnet"
  check(
    config.model.name == family,
    f"crnas.backbone={cr.backbone!r} searches the {family!r} family: model.name must be "
    f"{family!r} (got {config.model.name!r})",
  )
  configs.validate_training_config(config)
  models.model_from_config(config.model, 10)  # unknown fields (e.g. a ResNet's block) refused
  base = baseline_of(cr)
  if mobile:
    check(
      tuple(config.model.blocks) == (1, *base, 1),
      f"model.blocks={tuple(config.model.blocks)} must be the baseline (1, *{base}, 1) (the "
      "FLOPs the search keeps; groups 1 and 7 keep one block)",
    )
  else:
    check(
      tuple(config.model.stage_sizes) == base,
      f"model.stage_sizes={tuple(config.model.stage_sizes)} must be the baseline allocation "
      f"{base} (the FLOPs the search keeps)",
    )
  if cr.backbone in BLOCK_OF:
    want = BLOCK_OF[cr.backbone]
    check(config.model.block == want, f"crnas.backbone={cr.backbone!r} has {want!r} blocks")
  check(len(config.model.dilations) == 0, "crnas searches the dilations: model.dilations = ()")
  check(config.model.dtype == "float32", "crnas: the supernets are float32 only")
  check(config.population.size == 1, "crnas trains one supernet: population.size = 1")
  check(
    cr.stage_sampling in STAGE_SAMPLINGS,
    f"crnas.stage_sampling={cr.stage_sampling!r}; valid: {', '.join(STAGE_SAMPLINGS)}",
  )
  check(
    len(cr.max_blocks) == stages
    and all(int(t) >= b for t, b in zip(cr.max_blocks, base, strict=True)),
    f"crnas.max_blocks={tuple(cr.max_blocks)} must be {stages} counts >= the baseline {base}",
  )
  d = tuple(cr.dilations)
  check(
    len(d) >= 1 and min(d) >= 1 and len(set(d)) == len(d),
    f"crnas.dilations={d} must be distinct integers >= 1",
  )
  check(1 <= cr.beam_size <= 64, f"crnas.beam_size must be in 1..64, got {cr.beam_size}")
  check(cr.score_batches >= 1, f"crnas.score_batches must be >= 1, got {cr.score_batches}")
  check(cr.calib_batches >= 0, f"crnas.calib_batches must be >= 0, got {cr.calib_batches}")
  check(cr.paths_per_chunk >= 0, "crnas.paths_per_chunk must be >= 0")
  check(cr.flops_tolerance >= 0, "crnas.flops_tolerance must be >= 0")
  check(config.data.val_size > 0, "crnas scores architectures on the val split: data.val_size > 0")
  val_batches = -(-config.data.val_size // config.eval_batch_size)
  check(
    cr.score_batches <= val_batches,
    f"crnas.score_batches={cr.score_batches} exceeds the {val_batches} val batches "
    f"(data.val_size={config.data.val_size}, eval_batch_size={config.eval_batch_size}): "
    "one random completion per val mini-batch needs that many",
  )
