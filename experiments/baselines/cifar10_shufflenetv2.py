"""ShuffleNet V2 1.0x (CIFAR stem) on CIFAR-10: SGD+Nesterov 0.9, wd 5e-4, lr 0.1 cosine, 200 ep.

Ma et al. 2018's network (Table 5) with a stride-1 stem and no stem max-pool for 32x32 inputs,
trained with the pytorch-cifar recipe of `cifar10_resnet18.py`. Variants: `se` adds squeeze-and-
excitation to every unit (Ma et al. Table 8); `scale2` is the 2.0x net.

  python -m jaxml.main --config experiments/baselines/cifar10_shufflenetv2.py --workdir runs/snv2
  python -m jaxml.main --config experiments/baselines/cifar10_shufflenetv2.py:se --workdir runs/se
  python -m jaxml.main --config experiments/baselines/cifar10_shufflenetv2.py:smoke --workdir /tmp/s
"""

from jaxml import configs

VARIANTS = ("smoke", "se", "scale2")  # the `:arg` values this file accepts (comma-separated)


def get_config(arg: str | None = None):
  variants = configs.parse_variants(arg, VARIANTS, name="baselines/cifar10_shufflenetv2")
  c = configs.training_config("train", "shufflenetv2")
  c.optim.update(lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4, schedule="cosine")
  c.num_epochs = 200.0
  c.model.update(se="se" in variants, scale=2.0 if "scale2" in variants else 1.0)
  if "smoke" in variants:
    # The same family, cut to the 0.5x widths and one unit per stage, at 16x16 for 40 steps.
    se = c.model.se
    configs.shrink_for_cpu(c, "shufflenetv2", scale=0.5, units=(1, 1, 1), se=se)
  return c
