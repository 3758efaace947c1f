"""AM-LFS at CPU scale with label noise, where cross-entropy memorises (RESULTS.md, "evidence").

The recipe of `experiments/baselines/cifar10_cpu_study.py` (ResNet-8 w16, 16x16, 1,000 train
images, 60 epochs; set the noise with --config.data.label_noise) with K = 4 copies and trunks of
5 epochs, rewards on 2,000 clean val images. Variants: `baseline` (cross-entropy, one model) and
`frozen` (mu stays at cross-entropy: random losses around it and the best-copy broadcast).

  python -m jaxml.main --config experiments/amlfs/cifar10_cpu_study.py \
      --config.data.label_noise=0.4 --workdir /tmp/amlfs_n40_s0
  python -m jaxml.main --config experiments/amlfs/cifar10_cpu_study.py:baseline \
      --config.data.label_noise=0.4 --workdir /tmp/ce_n40_s0
"""

import pathlib

from jaxml import config_cli, configs
from jaxml.methods import amlfs

BASELINE = pathlib.Path(__file__).resolve().parents[1] / "baselines" / "cifar10_cpu_study.py"

VARIANTS = ("baseline", "frozen")  # no `smoke`: the study is already CPU-sized


def get_config(arg: str | None = None):
  name = "amlfs/cifar10_cpu_study"
  configs.parse_variants(arg, VARIANTS, name=name, exclusive=[("baseline", "frozen")])
  c = amlfs.experiment(lambda: config_cli.load_config_file(str(BASELINE)), arg, name)
  if c.method == "amlfs":
    c.population.size = 4
    c.amlfs.trunk_epochs = 5.0
  return c
