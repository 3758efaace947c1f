"""Wide-ResNet-28-10 on CIFAR-10 (Zagoruyko & Komodakis 2016).

SGD+Nesterov 0.9, weight decay 5e-4, batch 128, lr 0.1 x0.2 at epochs 60/120/160, 200 epochs,
dropout 0 (the paper's 3.89% setting without dropout uses the same schedule).

  python -m jaxml.main --config experiments/baselines/cifar10_wrn28_10.py --workdir runs/wrn
  python -m jaxml.main --config experiments/baselines/cifar10_wrn28_10.py:smoke --workdir /tmp/wrn
"""

from jaxml import configs

VARIANTS = ("smoke",)  # the `:arg` values this file accepts (comma-separated)


def get_config(arg: str | None = None):
  c = configs.training_config("train", "wrn")
  c.model.update(depth=28, width=10, dropout=0.0)
  c.optim.update(
    lr=0.1,
    momentum=0.9,
    nesterov=True,
    weight_decay=5e-4,
    schedule="step",
    decay_epochs=(60.0, 120.0, 160.0),
    decay_factor=0.2,
  )
  c.num_epochs = 200.0
  if "smoke" in configs.parse_variants(arg, VARIANTS, name="baselines/cifar10_wrn28_10"):
    # WRN-28-10 is far too big for a CPU smoke run: WRN-10-1 at 16x16 on a 10% subset.
    configs.shrink_for_cpu(c, "wrn", depth=10, width=1, dropout=0.0)
  return c
