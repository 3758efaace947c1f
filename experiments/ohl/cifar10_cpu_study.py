"""OHL-Auto-Aug at CPU scale, where the crop/flip baseline overfits (RESULTS.md, "evidence").

The recipe of `experiments/baselines/cifar10_cpu_study.py` (ResNet-8 w16, 16x16, 1,000 train
images, 60 epochs) with K = 4 copies (8 would double a run that is already ~5 CPU-minutes) and
trunks of 5 epochs, rewards on 2,000 val images. Variants: `baseline` (crop/flip, one model) and
`frozen` (uniform theta: sampled pairs and the best-copy broadcast, no learning).

  python -m jaxml.main --config experiments/ohl/cifar10_cpu_study.py --workdir /tmp/ohl_s0
  python -m jaxml.main --config experiments/ohl/cifar10_cpu_study.py:frozen --workdir /tmp/fr_s0
  python -m jaxml.main --config experiments/ohl/cifar10_cpu_study.py:baseline --workdir /tmp/b_s0
"""

import pathlib

from jaxml import config_cli, configs
from jaxml.methods import ohl

BASELINE = pathlib.Path(__file__).resolve().parents[1] / "baselines" / "cifar10_cpu_study.py"

VARIANTS = ("baseline", "frozen")  # no `smoke`: the study is already CPU-sized


def get_config(arg: str | None = None):
  name = "ohl/cifar10_cpu_study"
  configs.parse_variants(arg, VARIANTS, name=name, exclusive=[("baseline", "frozen")])
  c = ohl.experiment(lambda a: config_cli.load_config_file(f"{BASELINE}:{a}"), arg, name)
  if c.method == "ohl":
    c.population.size = 4
    c.ohl.trunk_epochs = 5.0
  return c
