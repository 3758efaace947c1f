"""AM-LFS with ResNet-20 on CIFAR-10 with 20 % symmetric label noise (Li et al., ICCV 2019).

The recipe and the paper's numbers: `cifar10_noise0.py`.

  python -m jaxml.main --config experiments/amlfs/cifar10_noise20.py --workdir runs/amlfs20
  python -m jaxml.main --config experiments/amlfs/cifar10_noise20.py:baseline --workdir runs/ce20
  python -m jaxml.main --config experiments/amlfs/cifar10_noise20.py:smoke --workdir /tmp/amlfs
"""

import pathlib

from jaxml import config_cli
from jaxml.methods import amlfs

BASELINE = pathlib.Path(__file__).resolve().parents[1] / "baselines" / "cifar10_resnet20.py"
VARIANTS = amlfs.VARIANTS


def get_config(arg: str | None = None):
  load = lambda: config_cli.load_config_file(str(BASELINE))  # noqa: E731
  return amlfs.experiment(load, arg, "amlfs/cifar10_noise20", label_noise=0.2)
