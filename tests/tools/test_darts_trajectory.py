"""tools/darts_trajectory.py: per-epoch means over seeds of the derived cell's accuracy and
parameter-free share, grouped by run name without the seed suffix."""

import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "tools"))

import darts_trajectory  # noqa: E402

CONV = (
  "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
)
SKIP = (
  "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
)


def _run(path: pathlib.Path, epochs: list[tuple[float, float, str]]) -> pathlib.Path:
  path.mkdir(parents=True)
  rows = [{"step": 7, "train_loss": 2.0}]  # a training row without the search's fields
  for e, (acc, share, cell) in enumerate(epochs, start=1):
    rows.append(
      {
        "step": 10 * e,
        "darts_true_acc_per_copy": [acc],
        "darts_param_free_share_mean": share,
        "darts_derived": [cell],
      }
    )
  (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  return path


def test_groups_seeds_and_averages_per_epoch(tmp_path, capsys):
  a = _run(tmp_path / "cpu_s0", [(94.0, 0.0, CONV), (54.3, 1.0, SKIP)])
  b = _run(tmp_path / "cpu_s1", [(92.0, 0.5, CONV), (56.3, 1.0, SKIP)])
  g = _run(tmp_path / "cpu_gdas_s0", [(80.0, 0.5, CONV)])
  darts_trajectory.main([str(a), str(b), str(g), "--every", "1"])
  out = capsys.readouterr().out
  assert "cpu (n=2)" in out and "cpu_gdas (n=1)" in out
  assert "| 1 | 93.00 ± 1.00 / 0.25 | 80.00 ± 0.00 / 0.50 |" in out
  assert "| 2 | 55.30 ± 1.00 / 1.00 | - |" in out
  assert f"{SKIP} (54.30)" in out
