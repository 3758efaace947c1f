"""MobileNetV2 1.0 (CIFAR stem) on CIFAR-10: SGD+Nesterov 0.9, wd 5e-4, lr 0.1 cosine, 200 epochs.

Sandler et al. 2018's network (Table 2) with the usual CIFAR strides (stem and the first
24-channel stage at stride 1: 32x32 -> 4x4), trained with the pytorch-cifar recipe of
`cifar10_resnet18.py`.

  python -m jaxml.main --config experiments/baselines/cifar10_mobilenetv2.py --workdir runs/mbv2
  python -m jaxml.main --config experiments/baselines/cifar10_mobilenetv2.py:smoke --workdir /tmp/m
"""

from jaxml import configs

VARIANTS = ("smoke",)  # the `:arg` values this file accepts (comma-separated)


def get_config(arg: str | None = None):
  c = configs.training_config("train", "mobilenetv2")
  c.optim.update(lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4, schedule="cosine")
  c.num_epochs = 200.0
  if "smoke" in configs.parse_variants(arg, VARIANTS, name="baselines/cifar10_mobilenetv2"):
    # The same family at width 0.25 with one block per stage, at 16x16 for 40 steps.
    configs.shrink_for_cpu(c, "mobilenetv2", width_mult=0.25, blocks=(1, 1, 1, 1, 1, 1, 1))
  return c
