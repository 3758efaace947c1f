"""Builds the NAS-Bench-201 table jaxml reads from the benchmark's official release.

  python -m jaxml.nasbench.build_table SOURCE --out DIR [--force]

writes `DIR/nasbench201/nats_tss_test_acc_200ep.csv` (the file `jaxml.nasbench.nb201` reads, found
when DIR is `config.data.dir` or `$JAXML_DATA_DIR`) and prints its SHA-256. SOURCE is one of:

- the NATS-Bench topology release unpacked, `NATS-tss-v1_0-3ffb9-simple/`: `meta.pickle.pbz2`
  (the 15,625 arch strings in benchmark index order) and one `<index>.pickle.pbz2` per
  architecture (zero-padded to 6 digits, as released, or not; `.pickle` without bz2 works too).
  Read with the standard library (`bz2`, `pickle`) and numpy: the pickles hold builtin types plus
  `collections.OrderedDict` and numpy scalars (parameter counts, latencies), nothing else, so
  numpy (a jaxml dependency) must be importable but no class of the benchmark's own code is;
- the NATS-Bench single file `NATS-tss-v1_0-3ffb9.pickle.pbz2` (the same dicts in one pickle);
- NAS-Bench-201 `NAS-Bench-201-v1_0-e61699.pth` or `NAS-Bench-201-v1_1-096897.pth` (a torch-saved
  dict): needs PyTorch, used only when installed (the loader still goes through the restricted
  unpickler below; both torch's zip and legacy formats). These earlier releases have other seed
  counts, so their table may differ from the NATS-Bench one; the printed checksum says which.

Every pickle is read by an unpickler that resolves only the few classes those files use, so a
file that names any other class (e.g. one crafted to run code) is refused, never executed.

What each row holds, as the official APIs define it (`get_more_info(index, dataset, hp='200',
is_random=False)['test-accuracy']`): the mean, over the seeds listed in the architecture's
`dataset_seed[dataset]` and in that order, of `eval_acc1es['<set>@199']` of the 200-epoch
results (`'200'` in NATS-Bench, `'full'` in NAS-Bench-201), where `<set>` is `ori-test` for
`cifar10` (trained on train+valid, tested on the 10,000 test images) and `x-test` for `cifar100`
and `ImageNet16-120` (the test half of their split test set). The mean is `sum / len` in float64,
as in the API, so the printed decimals are the API's to the last bit. `UniqueString` is the
API's `get_unique_str`: the cell's output as a formula in which `none` edges and edges from a
zero node are `#` and `skip_connect` passes its input through; rows are in benchmark index order.
The project's own table has `REFERENCE_SHA256` (docs/data.md).

Bad input ends the command with one line on stderr (`jaxml.nasbench.build_table: error: ...`) and
the error's exit code (3 data, 2 usage or a missing PyTorch for `.pth`), and nothing written.
"""

import argparse
import bz2
import codecs
import collections
import csv
import hashlib
import importlib
import io
import math
import numbers
import os
import pathlib
import pickle
import sys
import types

from jaxml.errors import ConfigError, DataError, JaxmlError
from jaxml.nasbench import nb201
from jaxml.spaces import nb201_encoding as enc_lib

PROG = "python -m jaxml.nasbench.build_table"
# SHA-256 of nasbench201/nats_tss_test_acc_200ep.csv on the project's machines (15,625 rows): a
# converted file with this digest is the same table, byte for byte. The release's sample cells
# convert to its rows exactly (docs/data.md); the full release was not available to convert.
REFERENCE_SHA256 = "cb5d777ec3368be83c8f9b3aa4d520696051cb0eb8d94b8f85b519f9ea4afa3e"
EPOCHS = 200
# (dataset key in the release, evaluation set) per column, in the CSV's column order.
SOURCES = (
  ("cifar10", "ori-test"),
  ("cifar100", "x-test"),
  ("ImageNet16-120", "x-test"),
)
PICKLE_SUFFIXES = (".pickle.pbz2", ".pickle")
HP_KEYS = ("200", "full")  # NATS-Bench names the 200-epoch results '200', NAS-Bench-201 'full'


# ---------------------------------------------------------------------------------------------
# Restricted unpickling


def _numpy_multiarray(name: str):
  # numpy 2 moved numpy.core to numpy._core; pickles from either name the module they came from.
  try:
    module = importlib.import_module("numpy._core.multiarray")
  except ImportError:  # numpy < 2 without the alias
    module = importlib.import_module("numpy.core.multiarray")
  return getattr(module, name)


def _allowed(module: str, name: str):
  """The object a pickle may name, or None: the classes the official files use, nothing else."""
  if (module, name) == ("collections", "OrderedDict"):
    return collections.OrderedDict
  # Protocol-2 pickles (torch.save's default) spell bytes, e.g. a numpy scalar's, with this.
  if (module, name) == ("_codecs", "encode"):
    return codecs.encode
  if module in ("builtins", "__builtin__") and name in ("set", "frozenset"):
    return {"set": set, "frozenset": frozenset}[name]
  if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name in (
    "scalar",
    "_reconstruct",
  ):
    return _numpy_multiarray(name)
  if module == "numpy" and name in ("dtype", "ndarray"):
    import numpy as np

    return getattr(np, name)
  # A .pth may hold small tensors; torch.load resolves storages itself and asks for these.
  if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
    return getattr(importlib.import_module("torch._utils"), name)
  return None


class _Refused(pickle.UnpicklingError):
  """A pickle names a class outside the allow-list (told apart from a merely broken file)."""


class _SafeUnpickler(pickle.Unpickler):
  def find_class(self, module, name):
    obj = _allowed(module, name)
    if obj is None:
      raise _Refused(
        f"it names {module}.{name}, which is not in the official release format (only builtin "
        "types, collections.OrderedDict and numpy scalars are read)"
      )
    return obj


# What torch.load takes as `pickle_module`: it subclasses `Unpickler` and calls `load`.
_safe_pickle = types.ModuleType("jaxml_safe_pickle")
_safe_pickle.Unpickler = _SafeUnpickler
_safe_pickle.load = lambda f, **kw: _SafeUnpickler(f, **kw).load()
_safe_pickle.UnpicklingError = pickle.UnpicklingError


def _load_pickle(path: pathlib.Path):
  """A `.pickle.pbz2` (bz2-compressed) or `.pickle` file -> the object; `DataError` if broken."""
  try:
    raw = path.read_bytes()
  except OSError as e:
    raise DataError(f"cannot read {path}: {e.strerror or e}") from None
  if path.name.endswith(".pbz2"):
    try:
      raw = bz2.decompress(raw)
    except (OSError, ValueError, EOFError) as e:
      raise DataError(f"{path}: not a complete bz2 file ({e})") from None
  try:
    return _SafeUnpickler(io.BytesIO(raw)).load()
  except _Refused as e:
    raise DataError(f"{path}: refused: {e}") from None
  except Exception as e:  # truncated or garbage bytes raise many types (EOFError, KeyError, ...)
    raise DataError(f"{path}: not a readable pickle ({type(e).__name__}: {e})") from None


def _load_pth(path: pathlib.Path):
  """A NAS-Bench-201 `.pth` -> the dict, via torch.load with the restricted unpickler."""
  try:
    import torch
  except ImportError:
    raise ConfigError(
      f"{path.name} is a torch-saved NAS-Bench-201 file: reading it needs PyTorch "
      "(pip install torch), or convert the NATS-Bench release NATS-tss-v1_0-3ffb9-simple/ "
      "instead, which needs only the standard library"
    ) from None
  try:
    # weights_only=False hands unpickling to `pickle_module`, whose find_class is the allow-list.
    return torch.load(path, map_location="cpu", pickle_module=_safe_pickle, weights_only=False)
  except TypeError:  # torch < 1.13 has no weights_only
    try:
      return torch.load(path, map_location="cpu", pickle_module=_safe_pickle)
    except Exception as e:
      raise DataError(f"{path}: cannot load ({type(e).__name__}: {e})") from None
  except _Refused as e:
    raise DataError(f"{path}: refused: {e}") from None
  except Exception as e:
    raise DataError(f"{path}: cannot load ({type(e).__name__}: {e})") from None


# ---------------------------------------------------------------------------------------------
# The official nesting -> rows


def unique_string(arch: str) -> str:
  """The benchmark's canonical form of a cell (its API's `get_unique_str`).

  Node 0 is "0"; an edge contributes "#" (zero) for `none` or a source that is exactly "#",
  the source itself for `skip_connect`, else "(source)@op"; a node joins its edges' terms,
  sorted, with "+". A node whose terms are all "#" becomes "#+#" (not "#"), and later edges do
  not treat it as zero: that is the official behaviour, kept so the classes match the release.
  """
  enc = enc_lib.from_string(arch)
  nodes, e = ["0"], 0
  for to in range(1, 4):
    terms = []
    for src in range(to):
      op = enc_lib.OPS[enc[e]]
      e += 1
      if op == "none" or nodes[src] == "#":
        terms.append("#")
      elif op == "skip_connect":
        terms.append(nodes[src])
      else:
        terms.append(f"({nodes[src]})@{op}")
    nodes.append("+".join(sorted(terms)))
  return nodes[3]


def _get(d, key, where: str):
  if not isinstance(d, dict):
    raise DataError(f"{where}: expected a dict, got {type(d).__name__}")
  if key not in d:
    shown = ", ".join(repr(k) for k in list(d)[:8])
    raise DataError(f"{where}: no key {key!r} (keys: {shown}); not the official release format")
  return d[key]


def _accuracy(value, where: str) -> float:
  if not isinstance(value, numbers.Real) and hasattr(value, "item"):  # a 0-d torch tensor
    value = value.item()
  if isinstance(value, bool) or not isinstance(value, numbers.Real):
    raise DataError(f"{where}: accuracy is a {type(value).__name__}, not a number: {value!r}")
  x = float(value)
  if not math.isfinite(x) or not 0.0 <= x <= 100.0:
    raise DataError(f"{where}: {x!r} is not an accuracy in [0, 100]")
  return x


def row_from_record(index: int, arch: str, record, where: str) -> list[str]:
  """One CSV row from an architecture's 200-epoch results (an `ArchResults` state dict).

  Args:
    index: the benchmark index (checked against the record's `arch_index`, when present).
    arch: the arch string from the release's `meta_archs` (checked against `arch_str`).
    record: {'arch_str', 'all_results': {(dataset, seed): {'eval_acc1es': ...}}, 'dataset_seed'}.
    where: names the record in errors.
  """
  if _get(record, "arch_str", where) != arch:
    raise DataError(
      f"{where}: arch_str {record['arch_str']!r} differs from meta_archs[{index}] {arch!r}"
    )
  if record.get("arch_index", index) != index:
    raise DataError(f"{where}: arch_index {record['arch_index']!r} where {index} was expected")
  results = _get(record, "all_results", where)
  seeds_of = _get(record, "dataset_seed", where)
  row = []
  for dataset, eval_set in SOURCES:
    seeds = _get(seeds_of, dataset, f"{where}: dataset_seed")
    if not isinstance(seeds, (list, tuple)) or not seeds:
      raise DataError(f"{where}: dataset_seed[{dataset!r}] lists no seeds: {seeds!r}")
    accs = []
    for seed in seeds:
      run = _get(results, (dataset, seed), f"{where}: all_results")
      at = f"{where}: all_results[{(dataset, seed)!r}]"
      epochs = run.get("epochs", EPOCHS) if isinstance(run, dict) else EPOCHS
      if epochs != EPOCHS:
        raise DataError(f"{at}: trained {epochs} epochs, the table is of {EPOCHS}")
      key = f"{eval_set}@{EPOCHS - 1}"
      accs.append(_accuracy(_get(_get(run, "eval_acc1es", at), key, f"{at}['eval_acc1es']"), at))
    # The API's mean: sum / len over the seeds in their listed order (the order fixes the bits).
    row.append(repr(sum(accs) / len(accs)))
  return [*row, arch, unique_string(arch)]


def _check_meta_archs(meta_archs, where: str) -> list[str]:
  if not isinstance(meta_archs, (list, tuple)):
    raise DataError(f"{where}: meta_archs is a {type(meta_archs).__name__}, not a list")
  seen = {}
  for i, arch in enumerate(meta_archs):
    try:
      idx = enc_lib.encoding_to_index(enc_lib.from_string(arch))
    except ConfigError as e:
      raise DataError(
        f"{where}: meta_archs[{i}] is not an NAS-Bench-201 arch string: {e}"
      ) from None
    if idx in seen:
      raise DataError(f"{where}: meta_archs[{i}] {arch} repeats meta_archs[{seen[idx]}]")
    seen[idx] = i
  return list(meta_archs)


def _hp_record(entry, where: str):
  """The 200-epoch `ArchResults` state of one architecture's {hp: results} dict."""
  if isinstance(entry, dict):
    for key in HP_KEYS:
      if key in entry:
        return entry[key], f"{where}[{key!r}]"
  return _get(entry, HP_KEYS[0], where), where  # raises, naming the keys found


def _arch_file(directory: pathlib.Path, index: int) -> pathlib.Path:
  names = [f"{index:06d}{s}" for s in PICKLE_SUFFIXES] + [f"{index}{s}" for s in PICKLE_SUFFIXES]
  for name in names:
    if (directory / name).is_file():
      return directory / name
  raise DataError(
    f"{directory}: no file for architecture {index} (looked for {names[0]}, {names[2]}); the "
    "release is incomplete or not unpacked whole"
  )


def _progress(i: int, total: int) -> None:
  # Reading 15,625 bz2 pickles takes minutes; say how far, but only to a person watching.
  if sys.stderr.isatty() and (i + 1) % 1000 == 0:
    print(f"{PROG}: read {i + 1}/{total} architectures", file=sys.stderr, end="\r", flush=True)


def read_release(source: str | os.PathLike) -> list[list[str]]:
  """The CSV rows (without the header) of an official release, in benchmark index order.

  `source` is a NATS-Bench topology directory, a NATS-Bench single-file pickle or a NAS-Bench-201
  `.pth` (module docstring). Rows are returned for every architecture the release lists, which
  `build` then requires to be the whole space. `DataError` for anything not in the format.
  """
  path = pathlib.Path(source).expanduser()
  if not path.exists():
    raise DataError(f"{path} does not exist (expected {_EXPECTED})")
  if path.is_dir():
    meta_path = next(
      (path / f"meta{s}" for s in PICKLE_SUFFIXES if (path / f"meta{s}").is_file()), None
    )
    if meta_path is None:
      raise DataError(
        f"{path}: no meta.pickle.pbz2; expected the unpacked NATS-Bench topology release "
        "(NATS-tss-v1_0-3ffb9-simple/: meta.pickle.pbz2 and 000000.pickle.pbz2 ...)"
      )
    meta_archs = _check_meta_archs(
      _get(_load_pickle(meta_path), "meta_archs", str(meta_path)), str(meta_path)
    )
    rows = []
    for i, arch in enumerate(meta_archs):
      f = _arch_file(path, i)
      record, where = _hp_record(_load_pickle(f), str(f))
      rows.append(row_from_record(i, arch, record, where))
      _progress(i, len(meta_archs))
    return rows
  name = path.name.lower()
  if name.endswith(".pth"):
    data = _load_pth(path)
  elif name.endswith(PICKLE_SUFFIXES):
    data = _load_pickle(path)
  elif name.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".zip")):
    raise DataError(f"{path} is an archive: unpack it first (e.g. tar -xf) and pass the folder")
  else:
    raise DataError(f"{path}: unknown format (expected {_EXPECTED})")
  where = str(path)
  meta_archs = _check_meta_archs(_get(data, "meta_archs", where), where)
  infos = _get(data, "arch2infos", where)
  if not isinstance(infos, dict):
    raise DataError(f"{where}: arch2infos is a {type(infos).__name__}, not a dict")
  rows = []
  for i, arch in enumerate(meta_archs):
    record, at = _hp_record(_get(infos, i, f"{where}: arch2infos"), f"{where}: arch2infos[{i}]")
    rows.append(row_from_record(i, arch, record, at))
  return rows


_EXPECTED = (
  "the NATS-Bench topology release NATS-tss-v1_0-3ffb9-simple/ (or its single-file "
  "NATS-tss-v1_0-3ffb9.pickle.pbz2), or NAS-Bench-201-v1_0-e61699.pth / "
  "NAS-Bench-201-v1_1-096897.pth"
)


def csv_bytes(rows: list[list[str]]) -> bytes:
  """The table file's bytes: the header `nb201.COLUMNS`, then the rows; '\\n' line ends."""
  buf = io.StringIO()
  w = csv.writer(buf, lineterminator="\n")
  w.writerow(nb201.COLUMNS)
  w.writerows(rows)
  return buf.getvalue().encode("utf-8")


def build(source: str | os.PathLike, out_dir: str | os.PathLike, force: bool = False):
  """Converts `source` and writes `<out_dir>/nasbench201/nats_tss_test_acc_200ep.csv`.

  Everything is read and checked before anything is written; the file is written to a temporary
  name and renamed, so a failure leaves no file and no directory this call created.

  Returns:
    (path written, its SHA-256 hex digest).
  """
  out_root = pathlib.Path(out_dir).expanduser()
  target = out_root / nb201.DATASET_DIR / nb201.FILENAME
  for p in (out_root, out_root / nb201.DATASET_DIR):
    if p.exists() and not p.is_dir():
      raise ConfigError(f"--out: {p} exists and is not a directory")
  if target.exists() and not force:
    raise ConfigError(f"{target} already exists; pass --force to replace it")
  rows = read_release(source)
  if len(rows) != enc_lib.NUM_ARCHS:
    raise DataError(
      f"{source}: lists {len(rows)} architectures, the NAS-Bench-201 space has all "
      f"{enc_lib.NUM_ARCHS}; the release is truncated or not the topology benchmark"
    )
  data = csv_bytes(rows)
  created = [p for p in (out_root, target.parent) if not p.exists()]
  tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
  done = False
  try:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(data)
    os.replace(tmp, target)
    done = True
  except OSError as e:
    raise ConfigError(f"--out: cannot write {target}: {e.strerror or e}") from None
  finally:
    if not done:  # also on Ctrl-C: no partial file, no directory this call made
      tmp.unlink(missing_ok=True)
      for d in reversed(created):  # deepest first
        try:
          d.rmdir()
        except OSError:
          break
  return target, hashlib.sha256(data).hexdigest()


def main(argv: list[str] | None = None) -> int:
  """The command line: 0 and two lines on stdout when written, else one line on stderr."""
  parser = argparse.ArgumentParser(
    prog=PROG,
    description="Build nasbench201/nats_tss_test_acc_200ep.csv, the NAS-Bench-201 table jaxml "
    "reads, from the official NATS-Bench / NAS-Bench-201 release. See docs/data.md.",
  )
  parser.add_argument("source", help=_EXPECTED)
  parser.add_argument(
    "--out", required=True, help="data root to write nasbench201/ into (e.g. $JAXML_DATA_DIR)"
  )
  parser.add_argument("--force", action="store_true", help="replace an existing table")
  args = parser.parse_args(argv)
  try:
    target, digest = build(args.source, args.out, force=args.force)
  except JaxmlError as e:
    print(f"{PROG.split()[-1]}: error: {' '.join(str(e).split())}", file=sys.stderr)
    return e.exit_code
  except KeyboardInterrupt:
    print(f"{PROG.split()[-1]}: interrupted; nothing was written.", file=sys.stderr)
    return 130
  if digest == REFERENCE_SHA256:
    same = "the same table as the reference (docs/data.md)"
  else:
    same = f"differs from the reference {REFERENCE_SHA256[:12]}... (docs/data.md says why)"
  print(f"wrote {target} ({enc_lib.NUM_ARCHS} architectures)")
  print(f"sha256 {digest}: {same}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
