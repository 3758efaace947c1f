"""NAS-Bench-201 ground truth as dense device arrays (Dong & Yang, ICLR 2020).

Reads `nasbench201/nats_tss_test_acc_200ep.csv` (the NATS-Bench topology space, identical to
NAS-Bench-201: 15,625 cells, one row each) and lays the three test accuracies out as float32
arrays of shape [15625] indexed by `nb201_encoding.encoding_to_index`. A query is then one gather,
so searches can look architectures up inside `jit` / `vmap` / `lax.scan` (a tabular benchmark:
a query costs nothing but stands for training that architecture).

The table holds only the *test* accuracy after the benchmark's 200-epoch schedule (mean over its
seeds); it has no validation accuracies and no learning curves. Search on this table therefore
optimises the test accuracy itself, noise-free, which is not what the NAS-Bench-201 paper does
(its searches use the 12-epoch validation accuracy as the reward).

`UniqueString` is the benchmark's canonical form of the computed graph: architectures sharing it
compute the same function (isomorphic cells, dead edges). It becomes an integer class id per
architecture (`iso_id`, ids in sorted order of the strings; 6,466 classes on the real file).
"""

import csv
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxml.data import locate
from jaxml.errors import ConfigError, DataError
from jaxml.spaces import nb201_encoding as enc_lib

FILENAME = "nats_tss_test_acc_200ep.csv"
DATASET_DIR = "nasbench201"
DATASETS = ("cifar10", "cifar100", "imagenet16-120")
ACC_COLUMNS = {
  "cifar10": "CIFAR10TestAccuracy200Epochs",
  "cifar100": "CIFAR100TestAccuracy200Epochs",
  "imagenet16-120": "ImageNetTestAccuracy200Epochs",
}
ARCH_COLUMN = "ArchitectureString"
UNIQUE_COLUMN = "UniqueString"
COLUMNS = (*ACC_COLUMNS.values(), ARCH_COLUMN, UNIQUE_COLUMN)


def _dataset_row(dataset: str) -> int:
  if dataset not in DATASETS:
    raise ConfigError(f"unknown NB201 dataset {dataset!r}; valid: {', '.join(DATASETS)}")
  return DATASETS.index(dataset)


@struct.dataclass
class NB201Table:
  """NAS-Bench-201 200-epoch test accuracies (%), dense over the 15,625 encodings.

  Attributes:
    accuracy: float32 [3, 15625]; row d is dataset `DATASETS[d]`, column `encoding_to_index(enc)`.
    iso_id: int32 [15625], the isomorphism class of each architecture (index into
      `unique_strings`).
    unique_strings: the distinct `UniqueString`s in sorted order (static, not a pytree leaf).
  """

  accuracy: jax.Array
  iso_id: jax.Array
  unique_strings: tuple[str, ...] = struct.field(pytree_node=False, default=())

  def values(self, dataset: str = "cifar10") -> jax.Array:
    """float32 [15625] accuracies of `dataset`, indexed by `encoding_to_index`."""
    return self.accuracy[_dataset_row(dataset)]

  def query(self, enc: jax.Array, dataset: str = "cifar10") -> jax.Array:
    """Accuracy of encodings [..., 6] -> [...]; jittable (one gather). `dataset` is static."""
    idx = enc_lib.encoding_to_index(jnp.asarray(enc, jnp.int32))
    return self.values(dataset)[idx]

  def query_string(self, arch: str, dataset: str = "cifar10") -> float:
    """Accuracy of one architecture given as the benchmark's arch string (host side)."""
    return float(self.values(dataset)[enc_lib.encoding_to_index(enc_lib.from_string(arch))])

  def iso_class(self, enc: jax.Array) -> jax.Array:
    """Isomorphism class id of encodings [..., 6] -> int32 [...]; jittable."""
    return self.iso_id[enc_lib.encoding_to_index(jnp.asarray(enc, jnp.int32))]

  def optimum(self, dataset: str = "cifar10") -> float:
    """Best accuracy of `dataset` over the whole space."""
    return float(jnp.max(self.values(dataset)))

  def argmax(self, dataset: str = "cifar10") -> np.ndarray:
    """Encoding int32[6] of the best architecture of `dataset` (lowest index among ties)."""
    return enc_lib.index_to_encoding(np.asarray(jnp.argmax(self.values(dataset))))


def _parse_float(value: str, column: str, line: int, path: pathlib.Path) -> float:
  try:
    x = float(value)
  except (TypeError, ValueError):
    raise DataError(f"{path}: line {line}: {column} is not a number: {value!r}") from None
  if not math.isfinite(x) or not 0.0 <= x <= 100.0:
    raise DataError(f"{path}: line {line}: {column} = {value!r} is not an accuracy in [0, 100]")
  return x


def read_csv(path: str | pathlib.Path) -> NB201Table:
  """Parses the CSV at `path` into an `NB201Table`; `DataError` for anything malformed.

  Checks: the five columns exist, every accuracy is a number in [0, 100], every arch string
  parses, no architecture appears twice, and all 15,625 architectures are present.
  """
  path = pathlib.Path(path)
  acc = np.full((len(DATASETS), enc_lib.NUM_ARCHS), np.nan, np.float64)
  unique = [None] * enc_lib.NUM_ARCHS
  seen_line = np.zeros(enc_lib.NUM_ARCHS, np.int64)
  try:
    with open(path, newline="") as f:
      reader = csv.DictReader(f)
      missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
      if missing:
        raise DataError(
          f"{path}: missing column(s) {', '.join(missing)}; found {reader.fieldnames}. "
          f"Expected the NATS-Bench topology CSV with columns {', '.join(COLUMNS)}."
        )
      for line, row in enumerate(reader, start=2):
        if any(row.get(c) is None for c in COLUMNS):
          raise DataError(f"{path}: line {line} has too few fields")
        try:
          # Python ints, not numpy: this loop runs 15,625 times per load.
          idx = int(enc_lib.from_string(row[ARCH_COLUMN]) @ enc_lib.PLACE_VALUES)
        except ConfigError as e:
          raise DataError(f"{path}: line {line}: unparsable {ARCH_COLUMN}: {e}") from None
        if seen_line[idx]:
          raise DataError(
            f"{path}: line {line}: architecture {row[ARCH_COLUMN]} already appeared on line "
            f"{seen_line[idx]}; the table must list each architecture once"
          )
        seen_line[idx] = line
        for d, name in enumerate(DATASETS):
          acc[d, idx] = _parse_float(row[ACC_COLUMNS[name]], ACC_COLUMNS[name], line, path)
        if not row[UNIQUE_COLUMN]:
          raise DataError(f"{path}: line {line}: empty {UNIQUE_COLUMN}")
        unique[idx] = row[UNIQUE_COLUMN]
  except (OSError, UnicodeDecodeError, csv.Error) as e:
    raise DataError(f"cannot read NAS-Bench-201 table {path}: {e}") from None
  found = int(np.count_nonzero(seen_line))
  if found != enc_lib.NUM_ARCHS:
    first_missing = enc_lib.to_string(enc_lib.index_to_encoding(int(np.argmin(seen_line > 0))))
    raise DataError(
      f"{path}: has {found} architectures, expected all {enc_lib.NUM_ARCHS} of the "
      f"NAS-Bench-201 space (first missing: {first_missing}); the file is truncated or not "
      "the NATS-Bench topology table"
    )
  strings, iso = np.unique(np.asarray(unique, dtype=object).astype(str), return_inverse=True)
  return NB201Table(
    accuracy=jnp.asarray(acc, jnp.float32),
    iso_id=jnp.asarray(iso.reshape(-1), jnp.int32),
    unique_strings=tuple(str(s) for s in strings),
  )


def find_csv(data_dir: str | None = None) -> pathlib.Path:
  """Path of the CSV via the data search order (explicit dir, $JAXML_DATA_DIR, ../shared/data)."""
  d = locate.require_dataset_dir(
    DATASET_DIR,
    (FILENAME,),
    data_dir or None,
    hint="It is the NATS-Bench topology (NAS-Bench-201) 200-epoch test-accuracy CSV; build it "
    "from the official release with `python -m jaxml.nasbench.build_table SOURCE --out DIR` "
    "(SOURCE: NATS-tss-v1_0-3ffb9-simple/ or NAS-Bench-201-v1_*.pth; docs/data.md).",
  )
  return d / FILENAME


def load(data_dir: str | None = None) -> NB201Table:
  """Finds and parses the NAS-Bench-201 table (see `find_csv`, `read_csv`)."""
  return read_csv(find_csv(data_dir))


def write_csv(path: str | pathlib.Path, accuracy: np.ndarray, unique_strings=None) -> None:
  """Writes a table in the benchmark's CSV format (for synthetic test tables and exports).

  Args:
    path: output file.
    accuracy: [3, 15625] accuracies, column r = architecture with index r.
    unique_strings: optional [15625] canonical strings; default: the arch string itself (every
      architecture its own class).
  """
  accuracy = np.asarray(accuracy, np.float64)
  if accuracy.shape != (len(DATASETS), enc_lib.NUM_ARCHS):
    raise ConfigError(f"accuracy must have shape (3, {enc_lib.NUM_ARCHS}), got {accuracy.shape}")
  encs = enc_lib.enumerate_all()
  with open(path, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(COLUMNS)
    for i in range(enc_lib.NUM_ARCHS):
      s = enc_lib.to_string(encs[i])
      u = s if unique_strings is None else unique_strings[i]
      w.writerow([repr(float(a)) for a in accuracy[:, i]] + [s, u])


def select_archs(table: NB201Table, n: int, seed: int, dataset: str = "cifar10"):
  """`n` architectures stratified over the ground-truth accuracy: the cells that compute
  something, sorted by accuracy, cut into n strata of equal count; one per stratum, drawn
  uniformly (seeded), avoiding an isomorphism class already drawn when the stratum allows.

  Returns (encodings int32 [n, 6], accuracies float64 [n]) in stratum order (ascending)."""
  encs = np.asarray(enc_lib.enumerate_all())
  ok = np.array([enc_lib.computes_something(e) for e in encs])
  idx = np.flatnonzero(ok)
  if not 2 <= n <= idx.size:
    raise ConfigError(f"the number of architectures must be in [2, {idx.size}], got {n}")
  acc = np.asarray(table.values(dataset), np.float64)
  iso = np.asarray(table.iso_id)
  idx = idx[np.argsort(acc[idx], kind="stable")]
  rng = np.random.default_rng([seed, 10])
  picked, used = [], set()
  for stratum in np.array_split(idx, n):
    order = rng.permutation(stratum)
    fresh = [i for i in order if iso[i] not in used]
    i = int((fresh or list(order))[0])
    picked.append(i)
    used.add(iso[i])
  picked = np.asarray(picked)
  return encs[picked].astype(np.int32), acc[picked]
