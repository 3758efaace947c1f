"""From decoded CIFAR-10 to an experiment's train / val / test splits.

`build_datasets` applies, in this order, to the original train split (the test split is never
touched and is only for final reporting):

1. a stratified validation hold-out of `val_size` images (`stratified_holdout`);
2. the EcoNAS sample-ratio proxy (Zhou et al., "EcoNAS: Finding Proxies for Economical Neural
   Architecture Search", CVPR 2020): a stratified subset of a fraction `s` of the remaining train
   images (`stratified_subset`);
3. symmetric label noise at rate p on that train subset only (`symmetric_label_noise`), the noisy
   setting of AM-LFS (Li et al., "AM-LFS: AutoML for Loss Function Search", ICCV 2019).

Holding val out first keeps the validation set identical across sample ratios and noise rates,
so proxies are compared on the same images. The resolution proxy `r` is applied on device at
preprocessing time (`jaxml.data.pipeline.normalize`). All host-side randomness comes from numpy
Generators seeded by (seed, stream), one stream per step, so each step is deterministic given the
seed and independent of the others. Index arrays are returned sorted, so every split keeps the
canonical class-by-class order of `jaxml.data.cifar10`.
"""

import logging

import ml_collections
import numpy as np

from jaxml.data import cifar10
from jaxml.data.pipeline import MIN_RESOLUTION, Datasets, Split
from jaxml.errors import ConfigError

_VAL_STREAM, _SUBSET_STREAM, _NOISE_STREAM = 1, 2, 3
DATASET_NAMES = ("cifar10",)


def _rng(seed: int, stream: int) -> np.random.Generator:
  # SeedSequence needs non-negative entropy; masking keeps negative seeds valid and distinct.
  return np.random.default_rng([int(seed) & (2**64 - 1), stream])


def _num_classes(labels: np.ndarray, num_classes: int | None) -> int:
  if num_classes is not None:
    return num_classes
  return int(labels.max()) + 1 if labels.size else 0


def stratified_holdout(
  labels: np.ndarray, num_holdout: int, seed: int, num_classes: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
  """Splits indices into (keep, holdout), holding out `num_holdout` stratified by class.

  Each class c with n_c examples gives num_holdout * n_c / N of them, rounded by largest
  remainder (ties to the lower class index) so the quotas sum to `num_holdout` exactly; for
  balanced classes that is num_holdout / num_classes each when it divides. Within a class the
  held-out examples are a uniformly random subset. Both index arrays are sorted and disjoint.
  """
  labels = np.asarray(labels)
  n = labels.shape[0]
  if not 0 <= num_holdout < n:
    raise ConfigError(f"val_size must be in [0, {n}) for {n} train images, got {num_holdout}.")
  counts = np.bincount(labels, minlength=_num_classes(labels, num_classes))
  exact = num_holdout * counts / n
  quotas = np.floor(exact).astype(np.int64)
  order = np.lexsort((np.arange(len(counts)), -(exact - quotas)))
  quotas[order[: num_holdout - quotas.sum()]] += 1
  rng = _rng(seed, _VAL_STREAM)
  held = [rng.permutation(np.flatnonzero(labels == c))[:q] for c, q in enumerate(quotas)]
  holdout = np.sort(np.concatenate(held + [np.zeros(0, np.int64)]))
  keep = np.setdiff1d(np.arange(n), holdout, assume_unique=True)
  return keep, holdout


def stratified_subset(
  labels: np.ndarray, ratio: float, seed: int, num_classes: int | None = None
) -> np.ndarray:
  """Sorted indices of a stratified random subset: round(ratio * n_c) of each class (>= 1).

  Rounding is half-up; every non-empty class keeps at least one example. ratio = 1 keeps all.
  """
  if not 0.0 < ratio <= 1.0:
    raise ConfigError(f"sample_ratio must be in (0, 1], got {ratio}.")
  labels = np.asarray(labels)
  if ratio == 1.0:
    return np.arange(labels.shape[0])
  rng = _rng(seed, _SUBSET_STREAM)
  picked = []
  for c in range(_num_classes(labels, num_classes)):
    members = np.flatnonzero(labels == c)
    if members.size:
      k = max(1, int(np.floor(ratio * members.size + 0.5)))
      picked.append(rng.permutation(members)[:k])
  return np.sort(np.concatenate(picked + [np.zeros(0, np.int64)]))


def symmetric_label_noise(
  labels: np.ndarray, rate: float, seed: int, num_classes: int
) -> np.ndarray:
  """Symmetric label noise: each label, with probability `rate`, becomes a random *other* class.

  Convention: `rate` is the probability that a label is wrong (flipped to one of the
  num_classes - 1 other classes, uniformly), not the probability of being redrawn uniformly from
  all classes (which would leave it correct 1/num_classes of the time). Returns new int32 labels.
  """
  if not 0.0 <= rate < 1.0:
    raise ConfigError(f"label_noise must be in [0, 1), got {rate}.")
  labels = np.asarray(labels, np.int32)
  if rate == 0.0:
    return labels.copy()
  rng = _rng(seed, _NOISE_STREAM)
  flip = rng.random(labels.shape) < rate
  shift = rng.integers(1, num_classes, size=labels.shape)  # 1..C-1: never the original class.
  return np.where(flip, (labels + shift) % num_classes, labels).astype(np.int32)


def default_data_config() -> ml_collections.ConfigDict:
  """The `config.data` block of an experiment, with its defaults."""
  return ml_collections.ConfigDict(
    {
      "name": "cifar10",  # Only CIFAR-10 for now.
      "dir": "",  # Explicit data root; '' searches $JAXML_DATA_DIR, ../shared/data, TFDS.
      "cache_dir": "",  # Decoded-array cache; '' = $JAXML_CACHE_DIR or ~/.cache/jaxml.
      "val_size": 5000,  # Images held out of train for validation; 0 = empty val split.
      "sample_ratio": 1.0,  # EcoNAS sample-ratio proxy s in (0, 1].
      "label_noise": 0.0,  # Symmetric label-noise rate p in [0, 1), train split only.
      "resolution": 32,  # EcoNAS resolution proxy r (>= 8), applied on device in normalize.
      "use_tfds": True,  # Allow a prepared TFDS cifar10 as the last resort.
      # Opt-in: download CIFAR-10 when no copy is found (needs internet; see docs/data.md).
      "download": False,
      "augment": {"crop": True, "flip": True, "cutout": 0},  # Cutout side; 0 = off.
    }
  )


def _expect(cfg, key: str, types: tuple[type, ...], what: str):
  value = cfg[key]
  if isinstance(value, bool) and bool not in types or not isinstance(value, types):
    raise ConfigError(f"config.data.{key} must be {what}, got {value!r}.")
  return value


def _check_keys(block, ref: ml_collections.ConfigDict, where: str) -> None:
  if not isinstance(block, (ml_collections.ConfigDict, dict)):
    raise ConfigError(f"config.{where} must be a dict like {ref.to_dict()}, got {block!r}.")
  unknown = sorted(set(block.keys()) - set(ref.keys()))
  missing = sorted(set(ref.keys()) - set(block.keys()))
  if unknown or missing:
    raise ConfigError(
      f"config.{where}: unknown keys {unknown}, missing keys {missing}; "
      "start from jaxml.data.default_data_config()."
    )


def validate_data_config(data_cfg: ml_collections.ConfigDict) -> None:
  """Raises a ConfigError for an unknown or missing key, a wrong type or an out-of-range value."""
  defaults = default_data_config()
  _check_keys(data_cfg, defaults, "data")
  _check_keys(data_cfg["augment"], defaults.augment, "data.augment")
  name = _expect(data_cfg, "name", (str,), "a string")
  if name not in DATASET_NAMES:
    raise ConfigError(f"config.data.name {name!r} is not supported; use one of {DATASET_NAMES}.")
  _expect(data_cfg, "dir", (str,), "a string ('' = search)")
  _expect(data_cfg, "cache_dir", (str,), "a string ('' = default)")
  _expect(data_cfg, "use_tfds", (bool,), "True or False")
  _expect(data_cfg, "download", (bool,), "True or False")
  if _expect(data_cfg, "val_size", (int,), "an int") < 0:
    raise ConfigError(f"config.data.val_size must be >= 0, got {data_cfg.val_size}.")
  ratio = _expect(data_cfg, "sample_ratio", (int, float), "a number")
  if not 0.0 < ratio <= 1.0:
    raise ConfigError(f"config.data.sample_ratio must be in (0, 1], got {ratio}.")
  noise = _expect(data_cfg, "label_noise", (int, float), "a number")
  if not 0.0 <= noise < 1.0:
    raise ConfigError(f"config.data.label_noise must be in [0, 1), got {noise}.")
  if _expect(data_cfg, "resolution", (int,), "an int") < MIN_RESOLUTION:
    raise ConfigError(
      f"config.data.resolution must be >= {MIN_RESOLUTION}, got {data_cfg.resolution}."
    )
  aug = data_cfg.augment
  _expect(aug, "crop", (bool,), "True or False")
  _expect(aug, "flip", (bool,), "True or False")
  size = cifar10.IMAGE_SHAPE[0]
  if not 0 <= _expect(aug, "cutout", (int,), "an int") <= size:
    raise ConfigError(f"config.data.augment.cutout must be in [0, {size}], got {aug.cutout}.")


def _split(images: np.ndarray, labels: np.ndarray, idx: np.ndarray) -> Split:
  return Split(images=images[idx], labels=labels[idx].astype(np.int32))


def build_datasets(
  data_cfg: ml_collections.ConfigDict,
  seed: int,
  *,
  expected_per_class: tuple[int, int] | None = cifar10.FULL_PER_CLASS,
) -> Datasets:
  """Loads CIFAR-10 and builds the experiment's splits (host numpy arrays).

  Args:
    data_cfg: a `default_data_config()`-shaped ConfigDict (validated here).
    seed: seeds the val hold-out, the sample-ratio subset and the label noise.
    expected_per_class: (train, test) images per class the data must have; None accepts any
      (tiny test data).

  Returns:
    `Datasets` with uint8 images and int32 labels. `train` is the (subset, noisy) remaining
    train split; `val` holds `val_size` clean train images (0 examples if val_size = 0); `test`
    is the full clean test split. Put it on device with `jaxml.data.pipeline.to_device`.

  Raises:
    ConfigError: a bad `data_cfg` value. DataError: missing or corrupt data.
  """
  validate_data_config(data_cfg)
  raw = cifar10.load_cifar10(
    data_cfg.dir or None,
    data_cfg.cache_dir or None,
    use_tfds=data_cfg.use_tfds,
    expected_per_class=expected_per_class,
    download=data_cfg.download,
  )
  n_train = raw.train_labels.shape[0]
  if data_cfg.val_size >= n_train:
    raise ConfigError(
      f"config.data.val_size={data_cfg.val_size} leaves no training images: the train split "
      f"has {n_train}. Use a smaller val_size."
    )
  keep, val_idx = stratified_holdout(raw.train_labels, data_cfg.val_size, seed, cifar10.NUM_CLASSES)
  sub = stratified_subset(
    raw.train_labels[keep], float(data_cfg.sample_ratio), seed, cifar10.NUM_CLASSES
  )
  train_idx = keep[sub]
  train_labels = symmetric_label_noise(
    raw.train_labels[train_idx], float(data_cfg.label_noise), seed, cifar10.NUM_CLASSES
  )
  logging.info(
      "CIFAR-10 from %s: %d train (s=%g, noise=%g), %d val, %d test.",
      raw.source, len(train_idx), data_cfg.sample_ratio, data_cfg.label_noise, len(val_idx),
      raw.test_labels.shape[0],
  )  # fmt: skip
  return Datasets(
    train=Split(images=raw.train_images[train_idx], labels=train_labels),
    val=_split(raw.train_images, raw.train_labels, val_idx),
    test=Split(images=raw.test_images, labels=raw.test_labels.astype(np.int32)),
    num_classes=cifar10.NUM_CLASSES,
    class_names=cifar10.CLASS_NAMES,
    source=raw.source,
  )
