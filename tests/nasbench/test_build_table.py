"""`python -m jaxml.nasbench.build_table`: the official NATS-Bench / NAS-Bench-201 nesting -> the
table nb201 reads. Releases here are tiny fakes written in the official format (the same dict
nesting, pickled and bz2-compressed the same way); the reference checksum is checked against the
real table when it is on this machine."""

import bz2
import collections
import csv
import hashlib
import io
import os
import pathlib
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest

from jaxml.data import locate
from jaxml.errors import DataError
from jaxml.nasbench import build_table as bt
from jaxml.nasbench import nb201
from jaxml.spaces import nb201_encoding as E

REPO = pathlib.Path(__file__).resolve().parents[2]
# Three cells in the release's index order (not encoding order) and their official unique strings.
ARCHS = (
  "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
  "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
  "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|none~0|nor_conv_1x1~1|none~2|",
)
UNIQUE = (
  "(0)@avg_pool_3x3+(0)@avg_pool_3x3+(0)@nor_conv_1x1+(0)@nor_conv_1x1",
  "((0)@nor_conv_3x3)@avg_pool_3x3+(0)@nor_conv_3x3+((0)@nor_conv_3x3)@nor_conv_3x3+0",
  "#+#+(0)@nor_conv_1x1",
)
# Which evaluation set each column comes from, and decoys the converter must not read.
SETS = {"cifar10": ("ori-test",), "cifar100": ("ori-test", "x-valid", "x-test")}
SETS["ImageNet16-120"] = SETS["cifar100"]
COLUMN_SET = {"cifar10": "ori-test", "cifar100": "x-test", "ImageNet16-120": "x-test"}


def _acc(i: int, dataset: str, eval_set: str, seed: int, epoch: int) -> float:
  """A distinct, recognisable accuracy per (arch, dataset, set, seed, epoch)."""
  d = list(SETS).index(dataset)
  s = ("ori-test", "x-valid", "x-test").index(eval_set)
  return 10 + (i * 7 + d * 13 + s * 5 + seed % 10 + epoch / 50) % 80 + 1 / 3


def _seeds(i: int) -> list[int]:
  # Like the release, some cells have fewer seeds, listed in no sorted order.
  return [[999, 777, 888], [777, 888], [888]][i % 3]


def _record(i: int, arch: str, epochs: int, dataset_keys=tuple(SETS)) -> dict:
  """An `ArchResults` state dict, nested as in the official files (a few epochs only)."""
  results, dataset_seed = {}, {}
  for dataset in ("cifar10-valid", *dataset_keys):
    seeds = _seeds(i)
    dataset_seed[dataset] = seeds
    for seed in seeds:
      sets = SETS.get(dataset, ("x-valid", "ori-test"))
      results[(dataset, seed)] = {
        "name": dataset,
        "train_acc1es": {e: 50.0 for e in (0, epochs - 1)},
        "params": np.float64(0.1293),  # numpy scalars, as in the release
        "flop": 15.6,
        "latency": [np.float64(0.0139)],
        "seed": f"{seed:04d}",
        "epochs": epochs,
        "eval_names": list(sets),
        "eval_acc1es": {
          f"{s}@{e}": _acc(i, dataset, s, seed, e) if dataset in SETS else 1.0
          for s in sets
          for e in (0, epochs - 2, epochs - 1)
        },
        "net_state_dict": None,
      }
  return {
    "arch_index": i,
    "arch_str": arch,
    "all_results": results,
    "dataset_seed": dataset_seed,
    "clear_net_done": True,
  }


def _entry(i: int, arch: str, hp_keys=("12", "200")) -> collections.OrderedDict:
  return collections.OrderedDict(
    (k, _record(i, arch, 200 if k in ("200", "full") else 12)) for k in hp_keys
  )


def _expected_row(i: int, arch: str) -> list[str]:
  row = []
  for dataset in SETS:
    accs = [_acc(i, dataset, COLUMN_SET[dataset], s, 199) for s in _seeds(i)]
    row.append(repr(sum(accs) / len(accs)))
  return row + [arch]


def _dump(obj, path: pathlib.Path) -> None:
  raw = pickle.dumps(obj, protocol=4)
  path.write_bytes(bz2.compress(raw) if path.name.endswith(".pbz2") else raw)


def write_release_dir(root: pathlib.Path, archs=ARCHS, ext=".pickle.pbz2") -> pathlib.Path:
  """A NATS-tss-v1_0-3ffb9-simple/ look-alike: meta + one file per architecture."""
  d = root / "NATS-tss-v1_0-3ffb9-simple"
  d.mkdir(parents=True)
  meta = {"meta_archs": list(archs), "total_archs": len(archs), "arch2infos": None}
  meta["evaluated_indexes"] = set()
  _dump(meta, d / f"meta{ext}")
  for i, arch in enumerate(archs):
    _dump(_entry(i, arch), d / f"{i:06d}{ext}")
  return d


def _single_file_dict(archs, hp_keys=("12", "200")) -> dict:
  return {
    "meta_archs": list(archs),
    "arch2infos": {i: _entry(i, a, hp_keys) for i, a in enumerate(archs)},
    "evaluated_indexes": set(range(len(archs))),
  }


def _run(argv, capsys):
  code = bt.main([str(a) for a in argv])
  out, err = capsys.readouterr()
  return code, out, err


# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", [".pickle.pbz2", ".pickle"])
def test_release_directory_rows_values_order_and_unique_strings(tmp_path, ext):
  rows = bt.read_release(write_release_dir(tmp_path, ext=ext))
  assert [r[3] for r in rows] == list(ARCHS)  # the release's index order
  assert [r[4] for r in rows] == list(UNIQUE)
  for i, arch in enumerate(ARCHS):
    assert rows[i][:4] == _expected_row(i, arch)
  # The API's mean (sum / len in the listed seed order), written with repr: bit-exact.
  accs = [_acc(0, "cifar100", "x-test", s, 199) for s in (999, 777, 888)]
  assert float(rows[0][1]) == (accs[0] + accs[1] + accs[2]) / 3


def test_single_file_pickle_and_unpadded_names_give_the_same_rows(tmp_path):
  want = bt.read_release(write_release_dir(tmp_path / "dir"))
  single = tmp_path / "NATS-tss-v1_0-3ffb9.pickle.pbz2"
  _dump(_single_file_dict(ARCHS), single)
  assert bt.read_release(single) == want
  d = write_release_dir(tmp_path / "unpadded")
  for f in d.glob("0*.pickle.pbz2"):
    f.rename(d / f"{int(f.name.split('.')[0])}.pickle.pbz2")
  assert bt.read_release(d) == want


def test_unique_string_matches_the_official_quirks():
  assert bt.unique_string(E.to_string(np.zeros(6, np.int32))) == "#+#+#"
  # Node 1 = "#" is zero, but node 2 = "#+#" is not "#", so the official form (this row of the
  # real table) keeps a conv from node 2 while dropping the one from node 1.
  arch = "|none~0|+|none~0|none~1|+|none~0|nor_conv_3x3~1|nor_conv_3x3~2|"
  assert bt.unique_string(arch) == "#+#+(#+#)@nor_conv_3x3"


def _full_space_release(path: pathlib.Path):
  """All 15,625 cells in a shuffled 'benchmark order', one seed each, 200-epoch results only."""
  order = np.random.default_rng(0).permutation(E.NUM_ARCHS)
  archs = [E.to_string(E.index_to_encoding(int(k))) for k in order]
  infos = {}
  for i, arch in enumerate(archs):
    runs = {
      (ds, 777): {"epochs": 200, "eval_acc1es": {f"{COLUMN_SET[ds]}@199": 10 + (i % 8000) / 100}}
      for ds in SETS
    }
    record = {"arch_str": arch, "all_results": runs, "dataset_seed": {ds: [777] for ds in SETS}}
    infos[i] = {"200": record}
  path.write_bytes(pickle.dumps({"meta_archs": archs, "arch2infos": infos}, protocol=4))
  return archs


def test_cli_writes_the_table_nb201_reads_and_its_checksum(tmp_path, capsys):
  src = tmp_path / "NATS-tss-v1_0-3ffb9.pickle"
  archs = _full_space_release(src)
  code, out, err = _run([src, "--out", tmp_path / "data"], capsys)
  assert code == 0, err
  target = tmp_path / "data" / nb201.DATASET_DIR / nb201.FILENAME
  digest = hashlib.sha256(target.read_bytes()).hexdigest()
  assert out.splitlines() == [
    f"wrote {target} (15625 architectures)",
    f"sha256 {digest}: differs from the reference {bt.REFERENCE_SHA256[:12]}... "
    "(docs/data.md says why)",
  ]
  rows = list(csv.reader(io.StringIO(target.read_text())))
  assert tuple(rows[0]) == nb201.COLUMNS
  assert [r[3] for r in rows[1:]] == archs
  assert b"\r" not in target.read_bytes()
  table = nb201.load(str(tmp_path / "data"))  # found through the data search order
  assert table.query_string(archs[123], "cifar100") == pytest.approx(10 + 123 / 100)
  assert not [p for p in target.parent.iterdir() if p.name != nb201.FILENAME]  # no temp file
  # An existing table is kept unless --force.
  before = target.read_bytes()
  code, out, err = _run([src, "--out", tmp_path / "data"], capsys)
  assert code == 2 and "--force" in err and not out and len(err.splitlines()) == 1
  assert target.read_bytes() == before
  assert _run([src, "--out", tmp_path / "data", "--force"], capsys)[0] == 0


class _RunsCode:
  def __reduce__(self):
    return (os.system, ("touch pwned",))


def _bad_release(tmp_path: pathlib.Path, case: str) -> pathlib.Path:
  """A source broken in one way; the path to pass to the command."""
  if case == "missing":
    return tmp_path / "nowhere"
  if case == "unknown_suffix":
    (tmp_path / "table.json").write_text("{}")
    return tmp_path / "table.json"
  if case == "archive":
    (tmp_path / "NATS-tss-v1_0-3ffb9-simple.tar").write_bytes(b"x" * 100)
    return tmp_path / "NATS-tss-v1_0-3ffb9-simple.tar"
  if case == "no_meta":
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty"
  d = write_release_dir(tmp_path)
  f = d / "000001.pickle.pbz2"
  if case == "truncated_bz2":
    f.write_bytes(f.read_bytes()[:500])
  elif case == "not_a_pickle":
    f.write_bytes(bz2.compress(b"\x80\x04garbage"))
  elif case == "code_in_pickle":
    _dump(_RunsCode(), f)
  elif case == "missing_arch_file":
    f.unlink()
  elif case == "incomplete_space":
    pass  # a consistent release of 3 cells is not the space
  elif case == "bad_meta_arch":
    _dump({"meta_archs": [*ARCHS[:2], "|conv~0|+|x|"]}, d / "meta.pickle.pbz2")
  elif case == "duplicate_meta_arch":
    _dump({"meta_archs": [ARCHS[0], ARCHS[1], ARCHS[0]]}, d / "meta.pickle.pbz2")
  else:
    entry = _entry(1, ARCHS[1])
    rec = entry["200"]
    run = rec["all_results"][("cifar100", 777)]
    if case == "no_200_epoch_results":
      del entry["200"]
    elif case == "no_x_test":
      del run["eval_acc1es"]["x-test@199"]
    elif case == "seed_without_results":
      rec["dataset_seed"]["cifar100"] = [777, 888, 999]
    elif case == "accuracy_out_of_range":
      run["eval_acc1es"]["x-test@199"] = 130.0
    elif case == "accuracy_not_a_number":
      run["eval_acc1es"]["x-test@199"] = "73.5"
    elif case == "wrong_epochs":
      run["epochs"] = 12
    elif case == "arch_mismatch":
      rec["arch_str"] = ARCHS[0]
    _dump(entry, f)
  return d


BAD = {
  "missing": "does not exist",
  "unknown_suffix": "unknown format",
  "archive": "unpack it first",
  "no_meta": "no meta.pickle.pbz2",
  "truncated_bz2": "not a complete bz2 file",
  "not_a_pickle": "not a readable pickle",
  "code_in_pickle": "names (posix|nt|os)\\.system",
  "missing_arch_file": "no file for architecture 1",
  "incomplete_space": "lists 3 architectures",
  "bad_meta_arch": "meta_archs\\[2\\] is not",
  "duplicate_meta_arch": "repeats meta_archs\\[0\\]",
  "no_200_epoch_results": "no key '200'",
  "no_x_test": "no key 'x-test@199'",
  "seed_without_results": "no key \\('cifar100', 999\\)",
  "accuracy_out_of_range": "not an accuracy in",
  "accuracy_not_a_number": "not a number",
  "wrong_epochs": "trained 12 epochs",
  "arch_mismatch": "differs from meta_archs\\[1\\]",
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_source_is_one_line_exit_3_and_nothing_written(tmp_path, monkeypatch, capsys, case):
  monkeypatch.chdir(tmp_path)  # where the crafted pickle would create its file
  (tmp_path / "src").mkdir()
  src = _bad_release(tmp_path / "src", case)
  code, out, err = _run([src, "--out", tmp_path / "out"], capsys)
  assert code == DataError.exit_code == 3
  assert not out and len(err.splitlines()) == 1
  assert err.startswith("jaxml.nasbench.build_table: error: ")
  assert re.search(BAD[case], err), err
  assert not (tmp_path / "out").exists()
  assert not (tmp_path / "pwned").exists()  # the crafted pickle never ran


def test_pth_without_torch_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
  monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ImportError
  src = tmp_path / "NAS-Bench-201-v1_1-096897.pth"
  src.write_bytes(b"PK\x03\x04 not read")
  code, out, err = _run([src, "--out", tmp_path / "out"], capsys)
  assert code == 2 and not out and len(err.splitlines()) == 1
  assert "pip install torch" in err
  assert not (tmp_path / "out").exists()


def test_out_that_is_a_file_is_refused_before_reading(tmp_path, capsys):
  (tmp_path / "out").write_text("keep")
  code, _, err = _run([tmp_path / "nowhere", "--out", tmp_path / "out"], capsys)
  assert code == 2 and "not a directory" in err
  assert (tmp_path / "out").read_text() == "keep"


def test_pth_release_with_torch(tmp_path):
  torch = pytest.importorskip("torch")
  want = bt.read_release(write_release_dir(tmp_path / "dir"))
  src = tmp_path / "NAS-Bench-201-v1_1-096897.pth"
  data = _single_file_dict(ARCHS, hp_keys=("less", "full"))
  # A 0-d tensor where a float was: the converter reads it as its value.
  run = data["arch2infos"][2]["full"]["all_results"][("cifar10", 888)]
  run["eval_acc1es"]["ori-test@199"] = torch.tensor(
    run["eval_acc1es"]["ori-test@199"], dtype=torch.float64
  )
  torch.save(data, src)
  assert bt.read_release(src) == want


def test_the_module_runs_as_a_command(tmp_path):
  (tmp_path / "x.json").write_text("{}")
  res = subprocess.run(
    [
      sys.executable,
      "-m",
      "jaxml.nasbench.build_table",
      str(tmp_path / "x.json"),
      "--out",
      str(tmp_path / "out"),
    ],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert res.returncode == 3 and res.stderr.count("\n") == 1 and "unknown format" in res.stderr


def test_missing_table_error_names_the_command(tmp_path, monkeypatch):
  monkeypatch.setenv(locate.ENV_VAR, str(tmp_path / "env"))
  monkeypatch.setattr(locate, "REPO_ROOT", tmp_path / "repo")
  with pytest.raises(DataError, match="python -m jaxml.nasbench.build_table"):
    nb201.load()


def test_reference_checksum_is_documented_and_matches_the_real_table():
  for doc in ("docs/data.md", "third_party/README.md"):
    assert bt.REFERENCE_SHA256 in (REPO / doc).read_text(), doc
  real = locate.find_dataset_dir(nb201.DATASET_DIR, (nb201.FILENAME,))
  if real is None:
    pytest.skip("real NAS-Bench-201 CSV not available")
  data = (real / nb201.FILENAME).read_bytes()
  assert hashlib.sha256(data).hexdigest() == bt.REFERENCE_SHA256
  # The writer reproduces the file byte for byte from its values, and the unique strings too.
  rows = list(csv.reader(io.StringIO(data.decode())))[1:]
  assert bt.csv_bytes(rows) == data
  assert all(bt.unique_string(r[3]) == r[4] for r in rows[::7])
