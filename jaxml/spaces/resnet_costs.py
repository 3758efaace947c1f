"""Analytic multiply-adds and parameters of `jaxml.models.resnet.ResNet` (CIFAR or ImageNet
stem, basic or bottleneck blocks, option-B projection shortcuts), the convention of
`jaxml.spaces.count_macs`: every conv k*k*C_in*C_out*H_out*W_out and the classifier. CRNAS's
stage spaces (`jaxml.spaces.crnas`) enumerate hundreds of allocations with them instead of
tracing each network; the tests check them against the jaxpr counters.
"""

from collections.abc import Sequence


def _out_size(size: int, kernel: int, stride: int, pad: int) -> int:
  return (size + 2 * pad - kernel) // stride + 1


def _block_macs(block: str, c_in: int, width: int, stride: int, size: int) -> tuple[int, int, int]:
  """(MACs, output channels, output size) of one block (convs only; projection when needed)."""
  out_size = _out_size(size, 3, stride, 1)
  hw = out_size * out_size
  if block == "basic":
    macs = 9 * c_in * width * hw + 9 * width * width * hw
    c_out = width
  else:
    c_out = 4 * width
    macs = c_in * width * size * size + 9 * width * width * hw + width * c_out * hw
  if stride != 1 or c_in != c_out:
    macs += c_in * c_out * hw  # option-B projection (1x1 conv, stride `stride`)
  return macs, c_out, out_size


def resnet_macs(
  stage_sizes: Sequence[int],
  stage_widths: Sequence[int],
  block: str,
  input_size: int,
  num_classes: int,
  stem: str = "cifar",
) -> int:
  """MACs per example of `ResNet(stage_sizes, stage_widths, block=block, stem=stem)` with
  projection shortcuts: every conv (k*k*C_in*C_out*H_out*W_out) and the classifier (C*classes
  + classes for its bias), the convention of `jaxml.spaces.count_macs`. Dilation changes none.
  """
  size = input_size
  if stem == "imagenet":
    size = _out_size(size, 7, 2, 3)
    macs = 49 * 3 * stage_widths[0] * size * size
    size = _out_size(size, 3, 2, 1)
  else:
    macs = 9 * 3 * stage_widths[0] * size * size
  c = stage_widths[0]
  for i, (n, w) in enumerate(zip(stage_sizes, stage_widths, strict=True)):
    for j in range(n):
      m, c, size = _block_macs(block, c, w, 2 if i > 0 and j == 0 else 1, size)
      macs += m
  return macs + c * num_classes + num_classes


def resnet_params(
  stage_sizes: Sequence[int], stage_widths: Sequence[int], block: str, num_classes: int, stem: str
) -> int:
  """Trainable parameters of that ResNet (conv kernels, BN scale + bias, classifier)."""
  k = 7 if stem == "imagenet" else 3
  total = k * k * 3 * stage_widths[0] + 2 * stage_widths[0]
  c = stage_widths[0]
  for i, (n, w) in enumerate(zip(stage_sizes, stage_widths, strict=True)):
    for j in range(n):
      stride = 2 if i > 0 and j == 0 else 1
      if block == "basic":
        c_out, p = w, 9 * c * w + 9 * w * w + 4 * w
      else:
        c_out = 4 * w
        p = c * w + 9 * w * w + w * c_out + 2 * (2 * w + c_out)
      if stride != 1 or c != c_out:
        p += c * c_out + 2 * c_out
      total, c = total + p, c_out
  return total + c * num_classes + num_classes
