"""CIFAR-10 (Krizhevsky, 2009) from disk into uint8 numpy arrays, decoded once and cached.

Three on-disk formats are read, searched in the roots of `search_roots` (an explicit dir alone;
else `$JAXML_DATA_DIR`, `../shared/data`, then `locate.download_root()`: `$JAXML_CACHE_DIR/data`,
default `~/.cache/jaxml/data`), and within each root:

1. the JPEG copy: `cifar10/train.zip` + `cifar10/test.zip`, members `<class>/<NNNN>.jpg`;
2. the original python pickles: `cifar-10-batches-py/data_batch_{1..5}` + `test_batch`;

and last, if `use_tfds` and `tensorflow_datasets` is installed, 3. TFDS `cifar10` -- but only
when it is already prepared in `$TFDS_DATA_DIR` (default `~/tensorflow_datasets`), so an offline
machine never waits on a download. Nothing is downloaded unless asked for: with `download=True`
(`config.data.download`) and no copy found, `jaxml.data.fetch.fetch_cifar10` puts the pickles into
the explicit dir, else into `locate.download_root()`, and they are read from there. docs/data.md
has the formats, the search order and the download.

Every format gives the same canonical order: class by class in label order 0..9, and within a
class in the original CIFAR-10 order (zip: sorted file names, which the JPEG copy numbers in the
original order; pickles and TFDS: a stable sort by label of the original order). So a seeded split
selects the same images whatever the format.

Decoded arrays are cached as one `.npz` per source in `cache_dir`, keyed by the sha256 of the
source files' bytes (about 0.1 s for the 61 MB of zips), so a changed source re-decodes and an
unchanged one never does. The cache is written to a temporary file and renamed into place, so a
killed process leaves either no cache entry or a complete one; an unreadable entry is re-decoded.
"""

import hashlib
import importlib.util
import io
import logging
import os
import pathlib
import pickle
import tempfile
import zipfile
import zlib
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from PIL import Image

from jaxml.data import locate
from jaxml.errors import DataError

CLASS_NAMES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
NUM_CLASSES = len(CLASS_NAMES)
IMAGE_SHAPE = (32, 32, 3)
# Images per class of the full data set, (train, test); pass None to accept any counts.
FULL_PER_CLASS = (5000, 1000)

ZIP_FILES = ("train.zip", "test.zip")
PICKLE_DIR = "cifar-10-batches-py"
PICKLE_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
PICKLE_TEST = ("test_batch",)
# Bump when decoding changes, so old cache entries are not reused.
CACHE_VERSION = 1

_HOW_TO_GET = (
  "To get CIFAR-10 with internet access: rerun with --config.data.download=True, or run "
  "`python -m jaxml.data.fetch cifar10` once. Offline: copy cifar-10-batches-py/ (extracted from "
  "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz) or cifar10/{train,test}.zip (the "
  f"JPEG copy) into <root>, where <root> is config.data.dir or ${locate.ENV_VAR}; or copy a "
  "TFDS cifar10 prepared with `tfds build cifar10` into $TFDS_DATA_DIR. Formats and search "
  "order: docs/data.md."
)


def search_roots(data_dir: str | None = None) -> list[pathlib.Path]:
  """Data roots searched for CIFAR-10, in order: `locate.candidate_roots`, then (without an
  explicit dir) `locate.download_root()`."""
  roots = locate.candidate_roots(data_dir)
  if not data_dir and locate.download_root() not in roots:
    roots.append(locate.download_root())
  return roots


class Source(NamedTuple):
  """Where CIFAR-10 was found: kind is 'zip', 'pickle' or 'tfds'; files are hashed for the cache."""

  kind: str
  location: pathlib.Path
  files: tuple[pathlib.Path, ...]


class RawCifar10(NamedTuple):
  """Decoded CIFAR-10 in canonical order: uint8 [N, 32, 32, 3] images, int32 [N] labels."""

  train_images: np.ndarray
  train_labels: np.ndarray
  test_images: np.ndarray
  test_labels: np.ndarray
  source: str


def _tfds_root() -> pathlib.Path:
  return pathlib.Path(os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets")).expanduser()


def _tfds_installed() -> bool:
  return importlib.util.find_spec("tensorflow_datasets") is not None


def _find_tfds(use_tfds: bool) -> tuple[Source | None, str]:
  """The prepared TFDS cifar10 version dir if any, plus a note for the not-found message."""
  root = _tfds_root()
  if not use_tfds:
    return None, f"TFDS cifar10 in {root} (skipped: use_tfds=False)"
  if not _tfds_installed():
    return None, f"TFDS cifar10 in {root} (skipped: tensorflow_datasets is not installed)"
  # Only a prepared copy is used: asking TFDS for an unprepared one may try the network.
  prepared = sorted(p.parent for p in root.glob("cifar10/*/dataset_info.json"))
  if not prepared:
    return None, f"TFDS cifar10 in {root} (not prepared)"
  version_dir = prepared[-1]
  files = tuple(sorted(p for p in version_dir.iterdir() if p.is_file()))
  return Source("tfds", version_dir, files), ""


def _find_files(roots: Sequence[pathlib.Path]) -> Source | None:
  pickles = PICKLE_TRAIN + PICKLE_TEST
  for root in roots:
    for d in (root / "cifar10", root):
      if all((d / f).is_file() for f in ZIP_FILES):
        return Source("zip", d, tuple(d / f for f in ZIP_FILES))
    for d in (root / PICKLE_DIR, root / "cifar10" / PICKLE_DIR, root):
      if all((d / f).is_file() for f in pickles):
        return Source("pickle", d, tuple(d / f for f in pickles))
  return None


def _download(root: pathlib.Path, not_found: str) -> Source:
  """Fetches the pickles into `root` (config.data.download=True) and returns them as the source."""
  from jaxml.data import fetch  # Only when asked: the loader itself never touches the network.

  logging.warning("%s; downloading it into %s (config.data.download=True).", not_found, root)
  try:
    fetch.fetch_cifar10(root)
  except DataError as e:
    raise DataError(f"{not_found}, and config.data.download=True failed: {e}") from e
  source = _find_files([root])
  if source is None:  # fetch_cifar10 returns only once <root>/cifar-10-batches-py is complete.
    raise DataError(f"{root}: no CIFAR-10 after the download; see docs/data.md.")
  return source


def find_source(
  data_dir: str | None = None, use_tfds: bool = True, download: bool = False
) -> Source:
  """Returns the first CIFAR-10 copy found, or raises a `DataError` listing every place searched.

  With `download`, a missing copy is downloaded (`jaxml.data.fetch`) into `data_dir` if given,
  else into `locate.download_root()`, instead of the error.
  """
  roots = search_roots(data_dir)
  found = _find_files(roots)
  if found is not None:
    return found
  if data_dir:  # the user's own directory: used or refused, never replaced (see locate.py)
    if download:
      return _download(
        pathlib.Path(data_dir).expanduser(), f"config.data.dir={data_dir} holds no CIFAR-10"
      )
    raise DataError(
      f"config.data.dir={data_dir} holds no CIFAR-10: expected cifar10/{{train,test}}.zip or "
      f"{PICKLE_DIR}/{{data_batch_1..5,test_batch}} (or those files directly in it). Fix the "
      "path, set config.data.dir='' to search the default places, or add "
      "--config.data.download=True to download it there (see docs/data.md)."
    )
  tfds_source, tfds_note = _find_tfds(use_tfds)
  if tfds_source is not None:
    return tfds_source
  if download:
    return _download(locate.download_root(), f"CIFAR-10 not found in {', '.join(map(str, roots))}")
  raise DataError(
    f"CIFAR-10 not found. Searched {', '.join(map(str, roots))} (each for "
    f"cifar10/{{train,test}}.zip or {PICKLE_DIR}/{{data_batch_1..5,test_batch}}, or those files "
    f"directly in it) and {tfds_note}. {_HOW_TO_GET}"
  )


def _decode_jpeg(data: bytes, zip_path: pathlib.Path, member: str) -> np.ndarray:
  try:
    with Image.open(io.BytesIO(data)) as im:
      if im.format != "JPEG":
        raise DataError(f"{zip_path}: member {member} is a {im.format} image, expected a JPEG.")
      if im.mode != "RGB" or im.size != IMAGE_SHAPE[1::-1]:
        raise DataError(
          f"{zip_path}: member {member} is a {im.size[0]}x{im.size[1]} {im.mode} image, "
          "expected 32x32 RGB. The archive is not the CIFAR-10 JPEG copy; re-copy it."
        )
      arr = np.asarray(im)
  except (OSError, SyntaxError, ValueError) as e:  # PIL's errors for unreadable/truncated images.
    raise DataError(
      f"{zip_path}: member {member} is not a readable JPEG ({e}). Re-copy the archive."
    ) from e
  if arr.shape != IMAGE_SHAPE or arr.dtype != np.uint8:
    raise DataError(f"{zip_path}: member {member} decoded to {arr.shape} {arr.dtype}.")
  return arr


def _zip_members(zf: zipfile.ZipFile, path: pathlib.Path) -> list[list[str]]:
  """Member names grouped by class (label order), each group sorted by file name."""
  by_class = [[] for _ in CLASS_NAMES]
  seen = set()
  for name in zf.namelist():
    if name.endswith("/") and name.rstrip("/") in CLASS_NAMES:
      continue  # A directory entry of a class folder.
    parts = name.split("/")
    if len(parts) != 2 or not parts[1]:
      raise DataError(f"{path}: unexpected member {name!r}; expected <class>/<file>.jpg.")
    if parts[0] not in CLASS_NAMES:
      raise DataError(
        f"{path}: member {name!r} is in unknown class folder {parts[0]!r}; "
        f"expected one of {', '.join(CLASS_NAMES)}."
      )
    if not parts[1].lower().endswith((".jpg", ".jpeg")):
      raise DataError(f"{path}: member {name!r} is not a .jpg file.")
    if name in seen:
      raise DataError(f"{path}: member {name!r} appears twice.")
    seen.add(name)
    by_class[CLASS_NAMES.index(parts[0])].append(name)
  return [sorted(names) for names in by_class]


def decode_zip(path: pathlib.Path, per_class: int | None = None) -> tuple[np.ndarray, np.ndarray]:
  """Decodes one zip of `<class>/<NNNN>.jpg` into uint8 [N,32,32,3] images and int32 labels.

  Args:
    path: the zip file.
    per_class: the number of images every class must have; None accepts any counts.

  Raises:
    DataError naming the file (and member) for a bad zip, a non-JPEG or non-32x32 RGB member,
    an unknown class folder, or a wrong count per class.
  """
  path = pathlib.Path(path)
  try:
    with zipfile.ZipFile(path) as zf:
      groups = _zip_members(zf, path)
      counts = [len(g) for g in groups]
      if per_class is not None and any(c != per_class for c in counts):
        raise DataError(
          f"{path}: expected {per_class} images per class, found "
          f"{dict(zip(CLASS_NAMES, counts, strict=True))}. The archive is incomplete; re-copy it."
        )
      images = np.empty((sum(counts), *IMAGE_SHAPE), np.uint8)
      labels = np.repeat(np.arange(NUM_CLASSES, dtype=np.int32), counts)
      i = 0
      for group in groups:
        for name in group:
          images[i] = _decode_jpeg(zf.read(name), path, name)
          i += 1
  except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError) as e:
    # What zipfile raises for a truncated archive, a bad CRC, bad deflate data or odd headers.
    raise DataError(f"{path}: corrupt or truncated zip archive ({e}). Re-copy it.") from e
  return images, labels


def _decode_zips(source: Source, expected: tuple[int, int] | None):
  train_x, train_y = decode_zip(source.files[0], expected and expected[0])
  test_x, test_y = decode_zip(source.files[1], expected and expected[1])
  return train_x, train_y, test_x, test_y


def decode_pickle(path: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
  """Reads one `cifar-10-batches-py` batch: uint8 [N,32,32,3] images, int32 labels (file order)."""
  path = pathlib.Path(path)
  try:
    with open(path, "rb") as f:
      batch = pickle.load(f, encoding="bytes")
  except Exception as e:  # Unpickling corrupt bytes can raise almost any exception type.
    raise DataError(f"{path}: not a readable CIFAR-10 pickle ({type(e).__name__}: {e}).") from e
  if not isinstance(batch, dict):
    raise DataError(f"{path}: expected a dict with b'data' and b'labels', got {type(batch)}.")
  data = batch.get(b"data", batch.get("data"))
  labels = batch.get(b"labels", batch.get("labels"))
  if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
    raise DataError(f"{path}: b'data' must be a uint8 [N, 3072] array.")
  if data.shape[1] != int(np.prod(IMAGE_SHAPE)) or labels is None or len(labels) != len(data):
    raise DataError(
      f"{path}: b'data' has shape {data.shape} and b'labels' "
      f"{'is missing' if labels is None else f'has {len(labels)} entries'}; "
      "expected [N, 3072] and N labels."
    )
  labels = np.asarray(labels, dtype=np.int64)
  if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
    raise DataError(f"{path}: labels outside 0..{NUM_CLASSES - 1}.")
  # Rows are channel-major (1024 R, 1024 G, 1024 B values, each row-major 32x32): CHW -> HWC.
  images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
  return np.ascontiguousarray(images), labels.astype(np.int32)


def canonical_order(labels: np.ndarray, ids: Sequence[str] | None = None) -> np.ndarray:
  """Permutation putting examples class by class, keeping the original order within a class.

  `ids` (TFDS 'id' strings like 'train_01234') give the original order when the input is not in
  it; without them the input order is taken as the original one (stable sort).
  """
  if ids is None:
    return np.argsort(labels, kind="stable")
  index = np.array([int(str(i).rsplit("_", 1)[-1]) for i in ids])
  return np.lexsort((index, labels))


def _decode_pickles(source: Source, expected: tuple[int, int] | None):
  del expected  # Checked by the caller on the combined arrays.
  out = []
  for names in (PICKLE_TRAIN, PICKLE_TEST):
    parts = [decode_pickle(source.location / n) for n in names]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    order = canonical_order(y)
    out += [x[order], y[order]]
  return tuple(out)


def _decode_tfds(source: Source, expected: tuple[int, int] | None):
  del expected
  import tensorflow_datasets as tfds  # Optional dependency, imported only when prepared.

  root, version = source.location.parents[1], source.location.name
  out = []
  try:
    builder = tfds.builder(f"cifar10:{version}", data_dir=str(root))
    for split in ("train", "test"):
      ex = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
      ids = [i.decode() if isinstance(i, bytes) else i for i in ex["id"]] if "id" in ex else None
      order = canonical_order(ex["label"], ids)
      out += [np.asarray(ex["image"], np.uint8)[order], np.asarray(ex["label"], np.int32)[order]]
  except Exception as e:  # TFDS/TF raise many types; report them as one data problem.
    raise DataError(f"TFDS cifar10 in {source.location} could not be read ({e}).") from e
  return tuple(out)


def _decode(source: Source, expected: tuple[int, int] | None):
  """(train_x, train_y, test_x, test_y) in canonical order."""
  if source.kind == "zip":
    return _decode_zips(source, expected)
  if source.kind == "pickle":
    return _decode_pickles(source, expected)
  return _decode_tfds(source, expected)


def _check(arrays, source: Source, expected: tuple[int, int] | None) -> None:
  for split, x, y, n in zip(
    ("train", "test"), arrays[0::2], arrays[1::2], expected or (None, None), strict=True
  ):
    if x.dtype != np.uint8 or x.shape[1:] != IMAGE_SHAPE or y.shape != (x.shape[0],):
      raise DataError(
        f"{source.location}: {split} images are {x.shape} {x.dtype}, labels {y.shape}."
      )
    counts = np.bincount(y, minlength=NUM_CLASSES)
    if len(counts) != NUM_CLASSES or (n is not None and np.any(counts != n)):
      raise DataError(
        f"{source.location}: {split} split has {counts.tolist()} images per class, expected "
        f"{n} for each of the {NUM_CLASSES} classes. The copy is incomplete; re-copy it."
      )


def source_digest(source: Source) -> str:
  """sha256 over the format, the cache version and every source file's name and bytes."""
  h = hashlib.sha256(f"{source.kind}:v{CACHE_VERSION}".encode())
  for path in source.files:
    h.update(f"|{path.name}|".encode())
    with open(path, "rb") as f:
      while chunk := f.read(1 << 22):
        h.update(chunk)
  return h.hexdigest()


_KEYS = ("train_images", "train_labels", "test_images", "test_labels")


def _read_cache(path: pathlib.Path, source: Source, expected: tuple[int, int] | None):
  """The cached arrays, or None when there are none or they are unreadable (then re-decoded)."""
  if not path.exists():
    return None
  try:
    with np.load(path, allow_pickle=False) as npz:
      arrays = tuple(npz[k] for k in _KEYS)
    _check(arrays, source, expected)
  except Exception as e:  # A damaged entry is only a cache miss.
    logging.warning("Ignoring CIFAR-10 cache %s (%s); decoding again.", path, e)
    return None
  return arrays


def _write_cache(path: pathlib.Path, arrays) -> None:
  """Writes the .npz to a temp file in the same dir and renames it: readers never see a partial."""
  try:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
  except OSError as e:
    logging.warning("Cannot write the CIFAR-10 cache %s (%s); continuing without.", path, e)
    return
  try:
    with os.fdopen(fd, "wb") as f:
      np.savez(f, **dict(zip(_KEYS, arrays, strict=True)))
      f.flush()
      os.fsync(f.fileno())
    os.chmod(tmp, 0o644)  # mkstemp makes it 0600; the cache may be shared between users.
    os.replace(tmp, path)
  except OSError as e:
    logging.warning("Cannot write the CIFAR-10 cache %s (%s); continuing without.", path, e)
  finally:
    if os.path.exists(tmp):
      os.unlink(tmp)


def load_cifar10(
  data_dir: str | None = None,
  cache_dir: str | os.PathLike | None = None,
  use_tfds: bool = True,
  expected_per_class: tuple[int, int] | None = FULL_PER_CLASS,
  download: bool = False,
) -> RawCifar10:
  """Finds, decodes (once) and returns CIFAR-10 train and test in canonical order.

  Args:
    data_dir: explicit data root or data set folder (`config.data.dir`); None/'' to search.
    cache_dir: where decoded arrays are cached; None/'' for `locate.default_cache_dir()`.
    use_tfds: whether a prepared TFDS `cifar10` may be used when no file copy is found.
    expected_per_class: (train, test) images every class must have; None accepts any counts
      (for tiny test data).
    download: when no copy is found, download the canonical archive (`jaxml.data.fetch`) into
      `data_dir` if given, else into `locate.download_root()`, and read it from there.

  Returns:
    A `RawCifar10` of uint8 [N, 32, 32, 3] images and int32 [N] labels in 0..9.

  Raises:
    DataError: the data is missing (message lists every place searched) or corrupt, or the
      download failed.
  """
  source = find_source(data_dir or None, use_tfds, download)
  cache_dir = pathlib.Path(cache_dir) if cache_dir else locate.default_cache_dir()
  cache_path = cache_dir / f"cifar10-{source.kind}-{source_digest(source)[:24]}.npz"
  arrays = _read_cache(cache_path, source, expected_per_class)
  if arrays is None:
    logging.info("Decoding CIFAR-10 (%s) from %s.", source.kind, source.location)
    arrays = _decode(source, expected_per_class)
    _check(arrays, source, expected_per_class)
    _write_cache(cache_path, arrays)
  return RawCifar10(*arrays, source=f"{source.kind}:{source.location}")
