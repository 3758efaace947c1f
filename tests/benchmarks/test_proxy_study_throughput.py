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
