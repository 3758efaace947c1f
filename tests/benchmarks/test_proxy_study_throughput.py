"""benchmarks/proxy_study_throughput.py --quick: every row measured, the per-cell rates kept."""

import json
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from benchmarks import proxy_study_throughput as bench  # noqa: E402

pytestmark = pytest.mark.slow  # its one test runs the script end to end


def test_quick_measures_fixed_builds_and_the_plain_step(tmp_path):
  out = tmp_path / "pst.json"
  payload = bench.main(["--quick", "--mappings", "", "--out", str(out)])
  assert json.loads(out.read_text())["records"] == payload["records"]
  fixed, resnet, plain = payload["records"]
  assert fixed["build"] == "fixed/loop" and fixed["cells"] == 1  # --quick: one fixed cell
  assert len(fixed["per_cell_img_per_s"]) == 1 and fixed["per_cell_img_per_s"][0] > 0
  assert resnet["setting"] == plain["setting"] == "C2 N1 8px ResNet cell"
  assert plain["build"].startswith("fixed/plain")
  for r in payload["records"]:
    assert r["img_per_s"] > 0
    # Both are rounded from the same unrounded rate (img/s to 0.1, the ratio to 0.001).
    assert abs(r["vs_reference"] - r["img_per_s"] / r["reference_img_per_s"]) <= 1e-3


def test_per_cell_table_sets_each_cell_beside_its_reference(tmp_path):
  """--per_cell_plain and --pytorch_json: each cell's engine rate, its bare-jit rate and the
  PyTorch rate of the same cell (matched by arch string; a cell without one shows '-')."""
  cells = bench.study_cells(2, 0, str(tmp_path))[0]  # no table there: 2 random cells
  arch = bench.enc201.to_string(tuple(int(v) for v in cells[0]))
  ref = tmp_path / "pytorch.json"
  ref.write_text(json.dumps({"records": [{"arch": arch, "img_per_s": 500.0}]}))
  args = bench.parse_args(["--quick", "--per_cell_plain", "--pytorch_json", str(ref)])
  rows = bench.per_cell_table(cells, [1000.0, 2000.0], args)
  assert [r["arch"] for r in rows][0] == arch
  assert rows[0]["pytorch_img_per_s"] == 500.0 and rows[0]["engine_vs_pytorch"] == 2.0
  assert rows[1]["pytorch_img_per_s"] is None and rows[1]["engine_vs_pytorch"] is None
  for r in rows:
    assert r["plain_jit_img_per_s"] > 0
    assert r["engine_vs_plain"] == pytest.approx(
      r["engine_img_per_s"] / r["plain_jit_img_per_s"], abs=1e-3
    )
