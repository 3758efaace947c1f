"""ResNet-18 (CIFAR stem) on CIFAR-10: SGD+Nesterov 0.9, wd 5e-4, lr 0.1 cosine, 200 epochs.

The standard recipe of the widely used pytorch-cifar ResNet-18 (~95% on CIFAR-10), with standard
crop + flip; the OHL baselines use the same schedule.

  python -m jaxml.main --config experiments/baselines/cifar10_resnet18.py --workdir runs/r18
  python -m jaxml.main --config experiments/baselines/cifar10_resnet18.py:smoke --workdir /tmp/r18
"""

from jaxml import configs

VARIANTS = ("smoke",)  # the `:arg` values this file accepts (comma-separated)


def get_config(arg: str | None = None):
  c = configs.training_config("train", "resnet18")
  c.optim.update(lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4, schedule="cosine")
  c.num_epochs = 200.0
  if "smoke" in configs.parse_variants(arg, VARIANTS, name="baselines/cifar10_resnet18"):
    # ResNet-18 is ~40x the compute of ResNet-20: the smoke run swaps in an 8-channel ResNet-8
    # at 16x16 so the whole pipeline runs in seconds on a CPU.
    configs.shrink_for_cpu(c, "cifar_resnet", depth=8, width=8)
  return c
