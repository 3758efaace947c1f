"""Layers shared by the backbones of `jaxml.models` and the networks of `jaxml.spaces`.

A leaf module (it imports no other jaxml module), so the search spaces can build on it without
importing the model registry. Conventions of every jaxml backbone:

* Convs have no bias and Kaiming-normal fan-out init (std = sqrt(2 / (k*k*out_channels)), not
  truncated), as in the torch reference code of He et al. 2016 ("Deep Residual Learning for
  Image Recognition") and Zagoruyko & Komodakis 2016. BN starts at scale 1, bias 0; the
  classifier uses torch's default nn.Linear weight init (U(+-1/sqrt(fan_in))) with a zero bias.
  Nothing is zero-initialised beyond that, so the nets match the papers' code rather than later
  "zero-init the last BN gamma" recipes.
* BatchNorm keeps running statistics in the 'batch_stats' collection (momentum 0.9 = torch's
  0.1, epsilon 1e-5). Flax normalises running variance with the biased batch variance where
  torch uses the unbiased one; the difference is (B-1)/B and irrelevant in practice.
* `dtype` is the computation dtype (float32 or bfloat16); parameters stay float32. The pooled
  features and the classifier run in float32 (a negligible cost) and logits are float32.
* 3x3 convs pad explicitly by 1 on every side, like torch's padding=1. Flax's 'SAME' would pad
  (0, 1) for stride 2 and so sample odd pixels, misaligned with the option-A subsampling x[::2].
* `STEMS`: 'cifar' keeps 32x32 inputs large (stride-1 stem), 'imagenet' is a paper's stem for
  224 px inputs (each family's module docstring says which).

Layers: `conv`, `batch_norm`, `classifier_head`, `max_pool_3x3_s2`, `SqueezeExcite` (Hu et al.
2018, "Squeeze-and-Excitation Networks") and `DilatedConv` (CRNAS's operation supernet, Liang
et al., ICLR 2020).
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

# Kaiming normal, fan-out mode, untruncated (torch.nn.init.kaiming_normal_(mode='fan_out')).
conv_kernel_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
# torch's default nn.Linear weight init: kaiming_uniform(a=sqrt(5)) == U(+-1/sqrt(fan_in)).
dense_kernel_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")

STEMS = ("cifar", "imagenet")
SE_REDUCTION = 16  # Hu et al. 2018 §6.1: r = 16 balances accuracy and cost


def conv(
  features: int,
  kernel: int,
  stride: int,
  dtype,
  name: str | None = None,
  *,
  groups: int = 1,
  dilation: int = 1,
  use_bias: bool = False,
) -> nn.Conv:
  """A conv (bias-free by default) with torch-style symmetric padding (dilation * (kernel // 2)
  on each side); `groups` = input channels makes it depthwise."""
  pad = dilation * (kernel // 2)
  return nn.Conv(
    features,
    (kernel, kernel),
    strides=(stride, stride),
    padding=((pad, pad), (pad, pad)),
    kernel_dilation=(dilation, dilation),
    feature_group_count=groups,
    use_bias=use_bias,
    dtype=dtype,
    param_dtype=jnp.float32,
    kernel_init=conv_kernel_init,
    name=name,
  )


class DilatedConv(nn.Module):
  """A k x k conv (bias-free, torch padding) whose dilation is picked per call from `dilations`
  by an integer index that may be traced: the operation supernet of CRNAS (Liang et al., ICLR
  2020, §3.3), one kernel shared by every dilation.

  Its variables are those of `conv(features, kernel, stride, dtype, groups, dilation=d, ...)`
  (one 'kernel' of shape (k, k, C_in / groups, features); groups = C_in is MobileNetV2's
  depthwise conv), so a fixed network that uses `conv` with the chosen dilation reads the same
  weights. Every dilation is computed and the chosen one kept with a `jnp.where` chain (no
  gather under vmap; the others get no gradient).
  """

  features: int
  kernel: int = 3
  stride: int = 1
  dilations: tuple[int, ...] = (1, 2, 3)
  dtype: jnp.dtype = jnp.float32
  groups: int = 1

  @nn.compact
  def __call__(self, x: jnp.ndarray, index) -> jnp.ndarray:
    k = self.kernel
    shape = (k, k, x.shape[-1] // self.groups, self.features)
    kernel = self.param("kernel", conv_kernel_init, shape, jnp.float32)
    x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
    out = None
    for i, d in enumerate(self.dilations):
      pad = d * (k // 2)
      y = jax.lax.conv_general_dilated(
        x,
        kernel,
        (self.stride, self.stride),
        ((pad, pad), (pad, pad)),
        rhs_dilation=(d, d),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=self.groups,
      )
      out = y if out is None else jnp.where(index == i, y, out)
    return out


def check_stem(stem: str) -> None:
  if stem not in STEMS:
    raise ValueError(f"stem must be one of {STEMS}, got {stem!r}.")


def max_pool_3x3_s2(x: jnp.ndarray) -> jnp.ndarray:
  """torch's MaxPool2d(3, stride=2, padding=1): -inf padding, so edge windows see real values."""
  return nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))


class SqueezeExcite(nn.Module):
  """Hu et al. 2018 Eq. 2-4: x * sigmoid(W2 relu(W1 mean_hw(x))), W1 reducing by `reduction`.

  The two fully connected layers have biases, as in the authors' Caffe models; they run in the
  input's dtype and the gate multiplies the input channel-wise.
  """

  reduction: int = SE_REDUCTION
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    c = x.shape[-1]
    s = jnp.mean(x, axis=(1, 2))
    dense = functools.partial(nn.Dense, dtype=self.dtype, param_dtype=jnp.float32)
    s = nn.relu(dense(max(1, c // self.reduction), name="reduce")(s))
    s = nn.sigmoid(dense(c, name="expand")(s))
    return x * s[:, None, None, :].astype(x.dtype)


def batch_norm(train: bool, dtype, name: str | None = None) -> nn.BatchNorm:
  """BatchNorm with the project-wide settings (running stats in 'batch_stats')."""
  return nn.BatchNorm(
    use_running_average=not train,
    momentum=0.9,
    epsilon=1e-5,
    dtype=dtype,
    param_dtype=jnp.float32,
    name=name,
  )


def classifier_head(x: jnp.ndarray, num_classes: int) -> jnp.ndarray:
  """Global average pool then a dense layer, both in float32; returns float32 logits."""
  x = jnp.mean(x.astype(jnp.float32), axis=(1, 2))
  return nn.Dense(
    num_classes,
    dtype=jnp.float32,
    param_dtype=jnp.float32,
    kernel_init=dense_kernel_init,
    bias_init=nn.initializers.zeros,
    name="head",
  )(x)
