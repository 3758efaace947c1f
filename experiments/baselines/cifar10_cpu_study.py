"""A CPU-sized recipe where the baseline overfits: the OHL and AM-LFS evidence runs build on it.

ResNet-8 with 16 channels at 16x16 on 1,000 training images (100 per class, stratified), 60
epochs of batch 64, SGD+Nesterov 0.9, wd 5e-4, lr 0.1 cosine, crop + flip; 2,000 val images held
out before the subset (clean), the full clean test set. Measured on the 2-core CPU (2026-11-29):
train accuracy reaches ~0.8 while val stays ~0.45 (clean labels); with 40 % label noise val
peaks at epoch ~25 and falls as the net memorises the noisy labels. About a minute per copy.

  python -m jaxml.main --config experiments/baselines/cifar10_cpu_study.py --workdir /tmp/base
  python -m jaxml.main --config experiments/baselines/cifar10_cpu_study.py \
      --config.data.label_noise=0.4 --config.seed=1 --workdir /tmp/base_n40_s1
"""

from jaxml import configs

TRAIN_IMAGES, VAL_IMAGES = 1000, 2000


VARIANTS = ()  # the `:arg` values this file accepts (comma-separated)


def get_config(arg: str | None = None):
  configs.parse_variants(arg, VARIANTS, name="baselines/cifar10_cpu_study")
  c = configs.training_config("train", "cifar_resnet")
  c.model.update(depth=8, width=16)
  c.data.update(
    val_size=VAL_IMAGES, sample_ratio=TRAIN_IMAGES / (50000 - VAL_IMAGES), resolution=16
  )
  c.optim.update(lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4, schedule="cosine")
  c.update(batch_size=64, num_epochs=60.0, eval_batch_size=1000, log_every_steps=50)
  c.update(eval_every_epochs=5.0, checkpoint_every_epochs=5.0)
  return c
