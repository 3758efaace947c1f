"""ResNet-20 on CIFAR-10 with the schedule of He et al. 2016 (§4.2).

SGD momentum 0.9, weight decay 1e-4, batch 128, lr 0.1 divided by 10 at 32k and 48k iterations,
64k iterations (~182 epochs on the 45k images left after the 5k validation hold-out).

  python -m jaxml.main --config experiments/baselines/cifar10_resnet20.py --workdir runs/r20
  python -m jaxml.main --config experiments/baselines/cifar10_resnet20.py:smoke --workdir /tmp/r20
"""

from jaxml import configs

VARIANTS = ("smoke",)  # the `:arg` values this file accepts (comma-separated)


def get_config(arg: str | None = None):
  c = configs.training_config("train", "resnet20")
  c.optim.update(
    lr=0.1,
    momentum=0.9,
    nesterov=False,
    weight_decay=1e-4,
    schedule="step",
    decay_epochs=(91.0, 136.5),
    decay_factor=0.1,
  )
  c.num_steps = 64000
  if "smoke" in configs.parse_variants(arg, VARIANTS, name="baselines/cifar10_resnet20"):
    # ~55 s on a quiet 2-core CPU (measured): 80 steps of 64 on real CIFAR-10, 2k val + full test.
    c.batch_size = 64
    c.num_steps = 80
    c.data.val_size = 2000
    c.optim.update(lr=0.05, schedule="cosine", warmup_epochs=0.0)
    c.log_every_steps = 10
    c.eval_batch_size = 1000
  return c
