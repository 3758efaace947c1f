"""tools/econas_search_table.py: the measures of each finished search and the variant means."""

import importlib.util
import json
import pathlib

import numpy as np
import pytest

from jaxml.nasbench import nb201
from jaxml.spaces import nb201_encoding as E

ROOT = pathlib.Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("est", ROOT / "tools/econas_search_table.py")
est = importlib.util.module_from_spec(spec)
spec.loader.exec_module(est)


def fake_search(workdir: pathlib.Path, enc, stage, val, found: float) -> None:
  workdir.mkdir(parents=True)
  np.savez(workdir / "search.npz", encoding=enc, stage=stage, val=val, network=stage * 0)
  summary = {"found_test_accuracy_nb201": found, "trainings": int((stage > 0).sum()),
             "networks_trained": 4, "wall_time_s": 12.0, "found_architecture": "a"}  # fmt: skip
  (workdir / "summary.json").write_text(json.dumps(summary))


def test_table_measures_the_proxy_against_the_truth(tmp_path, capsys):
  acc = np.linspace(50, 90, E.NUM_ARCHS)[None].repeat(3, axis=0)
  (tmp_path / "t" / "nasbench201").mkdir(parents=True)
  nb201.write_csv(tmp_path / "t" / "nasbench201" / nb201.FILENAME, acc)
  enc = np.stack([E.index_to_encoding(i) for i in (10, 5000, 9000, 15000)])[None]  # 1 cycle
  stage = np.array([[1, 1, 3, 3]])
  truth = acc[0][[10, 5000, 9000, 15000]]
  fake_search(tmp_path / "runs" / "cpu_s0", enc, stage, np.array([[0.1, 0.2, 0.4, 0.3]]), 80.0)
  args = est.parse_args(
    ["--root", str(tmp_path / "runs"), "--seeds", "0,1", "--variants", "cpu", "--table_only",
     "--table_dir", str(tmp_path / "t")]
  )  # fmt: skip
  rows = est.main(["--root", str(tmp_path / "runs"), "--seeds", "0,1", "--variants", "cpu",
                   "--table_only", "--table_dir", str(tmp_path / "t")])  # fmt: skip
  assert args.seeds == [0, 1] and rows[("cpu", 1)] is None  # seed 1 has not run
  r = rows[("cpu", 0)]
  assert r["found"] == 80.0 and r["best_trained"] == pytest.approx(truth.max(), abs=1e-3)
  assert r["best_stage3"] == pytest.approx(truth[3], abs=1e-3)
  assert r["spearman_stage"][1] is None  # two stage-1 trainings: too few to rank
  out = capsys.readouterr().out
  assert "| cpu | 1 | unfinished |" in out and "| cpu | 1 | 80.00 ± 0.00 |" in out


def test_unknown_variant_is_refused():
  with pytest.raises(SystemExit):
    est.parse_args(["--root", "x", "--variants", "cpu,evolution"])
