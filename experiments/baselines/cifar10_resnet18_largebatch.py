"""ResNet-18 on CIFAR-10 at batch 4096: LARS, linear scaling, 5-epoch warm-up, momentum correction.

The large-batch recipe of Goyal et al. 2017 (linear scaling rule §2.1, gradual warm-up from the
small-batch rate over 5 epochs §2.2, momentum correction §2.2) with LARS (You et al. 2017;
optax.lars, biases and BN parameters excluded from the trust ratio and weight decay). The rate is
stated for batch 256 and scaled: lr = 0.6 * 4096 / 256 = 9.6 (LARS rates multiply a trust ratio
of 0.001 * |w| / |g + wd w|, hence larger than SGD's). Both runs use 200 epochs, cosine decay.
`base256` is the batch-256 SGD reference on the same epoch budget (cifar10_resnet18's recipe at
batch 256): the claim to check is accuracy within 1 point of it. bfloat16 compute for a GPU.
Not tuned: no run of the full recipe has been made yet (see RESULTS.md).

  python -m jaxml.main --config experiments/baselines/cifar10_resnet18_largebatch.py \
    --workdir runs/r18_b4096
  python -m jaxml.main --config experiments/baselines/cifar10_resnet18_largebatch.py:base256 \
    --workdir runs/r18_b256
  python -m jaxml.main --config experiments/baselines/cifar10_resnet18_largebatch.py:smoke \
    --workdir /tmp/r18_lb
"""

from jaxml import configs

VARIANTS = ("smoke", "base256")  # the `:arg` values this file accepts (comma-separated)
BASE_BATCH = 256


def get_config(arg: str | None = None):
  variants = configs.parse_variants(arg, VARIANTS, name="baselines/cifar10_resnet18_largebatch")
  c = configs.training_config("train", "resnet18")
  c.model.dtype = "bfloat16"
  c.num_epochs = 200.0
  c.eval_batch_size = 1000
  if "base256" in variants:
    c.batch_size = BASE_BATCH
    c.optim.update(lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4, schedule="cosine")
  else:
    c.batch_size = 4096
    c.optim.update(
      optimizer="lars",
      lr=0.6,  # per 256 images (linear_scaling): 9.6 at 4096
      linear_scaling=True,
      base_batch_size=BASE_BATCH,
      warmup_epochs=5.0,
      warmup_start_factor=BASE_BATCH / c.batch_size,  # Goyal et al.: warm up from eta, not 0
      momentum=0.9,
      nesterov=False,
      momentum_correction=True,
      weight_decay=5e-4,
      trust_coefficient=0.001,
      schedule="cosine",
    )
  if "smoke" in variants:
    # Every switch of the recipe on an 8-channel ResNet-18 in float32 at 16x16, 40 steps of 64
    # (linear scaling then gives a peak lr of 0.15 after ~4 warm-up steps).
    configs.shrink_for_cpu(c, "resnet18", width=8)
    c.optim.warmup_epochs = 0.05
  return c
