"""Retrain a CRNAS network from scratch (method `train`): 3 seeds as one population.

The model is `crnas_resnet`: blocks per stage and per-block dilations from the command line, so
the found network and the baseline train on the same schedule. Defaults: ResNet-18's 2/2/2/2,
all dilations 1 (the baseline). Give the found one with the overrides CRNAS's summary.json
prints (`retrain_overrides`, for the config `retrain_config`). Sizes follow resnet18_cifar10.py:
full / `gpu` (width 64, 32x32, 60 epochs), `cpu` (width 8, 16x16, 10 % of the data, 15 epochs),
`smoke`. Variant `mobilenetv2`: the model is `mobilenetv2` (Table 2's blocks, all dilations 1;
width_mult 1.0, `cpu` 0.25, `smoke` 0.1 as in mobilenetv2_cifar10.py), the found one given by
`--config.model.blocks` / `--config.model.dilations`.

  python -m jaxml.main --config experiments/crnas/retrain_cifar10.py:cpu --workdir /tmp/rt_base
  python -m jaxml.main --config experiments/crnas/retrain_cifar10.py:cpu --workdir /tmp/rt_found \
    --config.model.stage_sizes='(1, 2, 3, 2)' --config.model.dilations='(1, 1, 2, 1, 2, 3, 3, 3)'
  python -m jaxml.main --config experiments/crnas/retrain_cifar10.py:gpu --workdir runs/rt_base
  python -m jaxml.main --config experiments/crnas/retrain_cifar10.py:cpu,mobilenetv2 \
    --workdir /tmp/rt_mbv2 --config.model.blocks='(1, 2, 3, 4, 3, 3, 1)'
"""

import ml_collections

from jaxml import configs
from jaxml.spaces.crnas_mobilenet import MOBILENET_BASELINE

VARIANTS = ("smoke", "cpu", "gpu", "mobilenetv2")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  v = configs.parse_variants(
    arg, VARIANTS, name="crnas/retrain_cifar10", exclusive=[("smoke", "cpu"), ("cpu", "gpu")]
  )
  mobile = "mobilenetv2" in v
  c = configs.training_config("train", "mobilenetv2" if mobile else "crnas_resnet")
  if mobile:
    c.model.update(width_mult=1.0, blocks=(1, *MOBILENET_BASELINE, 1), dilations=())
    c.optim.update(lr=0.1, weight_decay=4e-5, warmup_epochs=1.0)
  else:
    c.model.update(block="basic", width=64, stage_sizes=(2, 2, 2, 2), dilations=())
    c.optim.update(lr=0.1, weight_decay=5e-4, warmup_epochs=1.0)
  c.data.update(val_size=5000)
  c.population.update(size=3)  # three seeds, one population
  c.update(batch_size=128, num_epochs=60.0, log_every_steps=50)
  c.eval_every_epochs = 5.0
  c.checkpoint_every_epochs = 5.0
  if "cpu" in v:
    if mobile:
      c.model.width_mult = 0.25
    else:
      c.model.width = 8
    c.data.update(sample_ratio=0.1, val_size=1000, resolution=16)
    c.update(batch_size=64, eval_batch_size=250, num_epochs=15.0, log_every_steps=20)
    c.checkpoint_every_epochs = 1.0
  if "smoke" in v:
    if mobile:
      c.model.update(width_mult=0.1, blocks=(1, 1, 1, 2, 1, 1, 1))
    else:
      c.model.update(width=2, stage_sizes=(1, 1, 2, 1))
    c.data.update(sample_ratio=0.004, val_size=64, resolution=8)
    # vmap: one copy's graph to compile, not two unrolled ones.
    c.population.update(size=2, mapping="vmap", fast_compile=True)
    c.update(batch_size=16, eval_batch_size=32, num_steps=4, log_every_steps=2)
    c.optim.warmup_epochs = 0.0
    c.eval_every_steps = 2
    c.checkpoint_every_steps = 2
  return c
