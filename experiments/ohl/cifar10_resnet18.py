"""OHL-Auto-Aug with ResNet-18 on CIFAR-10 (Lin et al., ICCV 2019): the README's main job.

K = 8 copies, trunks of 2 epochs, theta over 1,296 augmentation pairs learned by REINFORCE on
val accuracy; SGD+Nesterov 0.9, wd 5e-4, lr 0.1 cosine over 200 epochs (the ResNet-18 baseline
schedule), standard crop/flip before the sampled pair.

  python -m jaxml.main --config experiments/ohl/cifar10_resnet18.py --workdir runs/ohl
  python -m jaxml.main --config experiments/ohl/cifar10_resnet18.py:smoke --workdir /tmp/ohl
  # the baseline with the same schedule, and the frozen-theta (uniform policy) ablation:
  python -m jaxml.main --config experiments/ohl/cifar10_resnet18.py:baseline --workdir runs/base
  python -m jaxml.main --config experiments/ohl/cifar10_resnet18.py:frozen --workdir runs/frozen
"""

import pathlib

from jaxml import config_cli
from jaxml.methods import ohl

# Model, data and schedule come from the matching plain-training recipe.
BASELINE = pathlib.Path(__file__).resolve().parents[1] / "baselines" / "cifar10_resnet18.py"

VARIANTS = ohl.VARIANTS


def get_config(arg: str | None = None):
  return ohl.experiment(
    lambda a: config_cli.load_config_file(f"{BASELINE}:{a}"), arg, "cifar10_resnet18"
  )
