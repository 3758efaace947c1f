"""AM-LFS with ResNet-20 on CIFAR-10 with 0 % symmetric label noise (Li et al., ICCV 2019).

The paper's row (CIFAR-10 test accuracy %, from the project's seed documents, REFERENCES.md §2):
cross-entropy 91.2 / 87.9 / 84.9 and AM-LFS 93.1 / 89.9 / 87.3 at 0 / 10 / 20 % noise
(`cifar10_noise{0,10,20}.py`). The recipe is ResNet-20's (He et al. 2016,
`experiments/baselines/cifar10_resnet20.py`) with the noise on the train split only (val and
test clean, the same noisy labels for every variant of one seed); K = 8 copies, trunks of 1
epoch, mu of the loss Gaussian learned on val accuracy.

  python -m jaxml.main --config experiments/amlfs/cifar10_noise0.py --workdir runs/amlfs0
  python -m jaxml.main --config experiments/amlfs/cifar10_noise0.py:baseline --workdir runs/ce0
  python -m jaxml.main --config experiments/amlfs/cifar10_noise0.py:smoke --workdir /tmp/amlfs
"""

import pathlib

from jaxml import config_cli
from jaxml.methods import amlfs

BASELINE = pathlib.Path(__file__).resolve().parents[1] / "baselines" / "cifar10_resnet20.py"
VARIANTS = amlfs.VARIANTS


def get_config(arg: str | None = None):
  load = lambda: config_cli.load_config_file(str(BASELINE))  # noqa: E731
  return amlfs.experiment(load, arg, "amlfs/cifar10_noise0", label_noise=0.0)
