"""OHL-Auto-Aug with Wide-ResNet-28-10 on CIFAR-10 (Lin et al., ICCV 2019).

K = 8 copies, trunks of 2 epochs; the WRN schedule: SGD+Nesterov 0.9, wd 5e-4, lr 0.1 x0.2 at
epochs 60/120/160 of 200.

  python -m jaxml.main --config experiments/ohl/cifar10_wrn28_10.py --workdir runs/ohl_wrn
  python -m jaxml.main --config experiments/ohl/cifar10_wrn28_10.py:smoke --workdir /tmp/ohl_wrn
  python -m jaxml.main --config experiments/ohl/cifar10_wrn28_10.py:baseline --workdir runs/wrn
  python -m jaxml.main --config experiments/ohl/cifar10_wrn28_10.py:frozen --workdir runs/wrn_fz
"""

import pathlib

from jaxml import config_cli
from jaxml.methods import ohl

# Model, data and schedule come from the matching plain-training recipe.
BASELINE = pathlib.Path(__file__).resolve().parents[1] / "baselines" / "cifar10_wrn28_10.py"

VARIANTS = ohl.VARIANTS


def get_config(arg: str | None = None):
  return ohl.experiment(
    lambda a: config_cli.load_config_file(f"{BASELINE}:{a}"), arg, "cifar10_wrn28_10"
  )
