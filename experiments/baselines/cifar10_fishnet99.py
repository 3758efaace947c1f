"""FishNet-99 (CIFAR stem) on CIFAR-10: SGD+Nesterov 0.9, wd 5e-4, lr 0.1 cosine, 200 epochs.

Sun et al. 2018's network with a stride-1 first stem conv and no stem max-pool (32x32 input: the
tail reaches 4x4, the body climbs back to 32x32, the head ends at 4x4), trained with the
pytorch-cifar recipe of `cifar10_resnet18.py`. `fishnet150` swaps in FishNet-150.

  python -m jaxml.main --config experiments/baselines/cifar10_fishnet99.py --workdir runs/fish99
  python -m jaxml.main --config experiments/baselines/cifar10_fishnet99.py:smoke --workdir /tmp/f
"""

from jaxml import configs

VARIANTS = ("smoke", "fishnet150")  # the `:arg` values this file accepts (comma-separated)


def get_config(arg: str | None = None):
  variants = configs.parse_variants(arg, VARIANTS, name="baselines/cifar10_fishnet99")
  name = "fishnet150" if "fishnet150" in variants else "fishnet99"
  c = configs.training_config("train", name)
  c.optim.update(lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4, schedule="cosine")
  c.num_epochs = 200.0
  if "smoke" in variants:
    # FishNet's depth is fixed by its name: the smoke keeps every stage and block, with every
    # plane at 4/64 of the paper's width, at 16x16 for 40 steps.
    configs.shrink_for_cpu(c, name, width=4)
  return c
