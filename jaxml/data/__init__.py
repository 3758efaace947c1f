"""jaxml.data: CIFAR-10 from disk to device-resident, augmented batches.

- `cifar10`: find, decode and cache CIFAR-10 (zip of JPEGs, python pickles or TFDS).
- `fetch`: the opt-in download of the canonical CIFAR-10 archive (`python -m jaxml.data.fetch`).
- `splits`: validation hold-out, EcoNAS sample-ratio proxy, symmetric label noise, and
  `build_datasets(data_cfg, seed)` which applies them.
- `pipeline`: `Split` / `Datasets` containers, `to_device`, and jit-able batching,
  augmentation and normalisation.
"""

from jaxml.data.cifar10 import CLASS_NAMES, NUM_CLASSES, RawCifar10, load_cifar10
from jaxml.data.pipeline import (
  CIFAR10_MEAN,
  CIFAR10_STD,
  Datasets,
  Split,
  batch_indices,
  cutout,
  normalize,
  random_crop_flip,
  standard_augment,
  steps_per_epoch,
  to_device,
)
from jaxml.data.splits import (
  build_datasets,
  default_data_config,
  stratified_holdout,
  stratified_subset,
  symmetric_label_noise,
  validate_data_config,
)

__all__ = [
  "CIFAR10_MEAN",
  "CIFAR10_STD",
  "CLASS_NAMES",
  "NUM_CLASSES",
  "Datasets",
  "RawCifar10",
  "Split",
  "batch_indices",
  "build_datasets",
  "cutout",
  "default_data_config",
  "load_cifar10",
  "normalize",
  "random_crop_flip",
  "standard_augment",
  "steps_per_epoch",
  "stratified_holdout",
  "stratified_subset",
  "symmetric_label_noise",
  "to_device",
  "validate_data_config",
]
