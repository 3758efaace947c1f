"""ResNet-50 (CIFAR stem) on CIFAR-10: SGD+Nesterov 0.9, wd 5e-4, lr 0.1 cosine, 200 epochs.

The pytorch-cifar ResNet-50 (bottleneck blocks, 3x3 stride-1 stem; 23.5 M parameters) with the
recipe of `cifar10_resnet18.py`. `se` adds squeeze-and-excitation to every block (SE-ResNet-50,
Hu et al. 2018).

  python -m jaxml.main --config experiments/baselines/cifar10_resnet50.py --workdir runs/r50
  python -m jaxml.main --config experiments/baselines/cifar10_resnet50.py:se --workdir runs/se50
  python -m jaxml.main --config experiments/baselines/cifar10_resnet50.py:smoke --workdir /tmp/r50
"""

from jaxml import configs

VARIANTS = ("smoke", "se")  # the `:arg` values this file accepts (comma-separated)


def get_config(arg: str | None = None):
  variants = configs.parse_variants(arg, VARIANTS, name="baselines/cifar10_resnet50")
  c = configs.training_config("train", "resnet50")
  c.optim.update(lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4, schedule="cosine")
  c.num_epochs = 200.0
  c.model.se = "se" in variants
  if "smoke" in variants:
    # Every bottleneck block of ResNet-50 at base width 4 (stages 4/8/16/32, outputs x4), at
    # 16x16 for 40 steps.
    configs.shrink_for_cpu(c, "resnet50", width=4, se=c.model.se)
  return c
