"""tools/ranking_by_ops.py: a ranking study's random cells grouped by their number of convs."""

import json
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "tools"))

import ranking_by_ops  # noqa: E402

CELLS = [  # 0, 2 and 6 convs, a dead cell (output unreached) and a table-top cell (not random)
  "|skip_connect~0|+|skip_connect~0|avg_pool_3x3~1|+|skip_connect~0|skip_connect~1|none~2|",
  "|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|nor_conv_1x1~0|skip_connect~1|none~2|",
  "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_1x1~2|",
  "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
  "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
]


def test_groups_the_random_live_cells_by_conv_count(tmp_path, capsys):
  ranking = {
    "architectures": CELLS,
    "is_random": [True, True, True, True, False],
    "scores": [[0.5, 0.4, 0.3, 0.1, 0.9]],  # the supernet prefers fewer convs
    "true_accuracy": [70.0, 90.0, 93.0, 10.0, 94.0],
  }
  rows, rho_score, rho_truth = ranking_by_ops.by_convs(ranking)
  assert [(k, n) for k, n, _, _ in rows] == [(0, 1), (2, 1), (6, 1)]
  assert rows[1][2:] == pytest.approx((0.4, 90.0))
  assert rho_score == pytest.approx(-1.0) and rho_truth == pytest.approx(1.0)
  (tmp_path / "ranking.json").write_text(json.dumps(ranking))
  ranking_by_ops.main([str(tmp_path)])
  out = capsys.readouterr().out
  assert "supernet score -1.00, table 1.00" in out and "| 6 | 1 | 0.3000 | 93.00 |" in out


def test_a_directory_without_a_ranking_study_is_refused_in_one_line(tmp_path, capsys):
  (tmp_path / "run").mkdir()
  (tmp_path / "run.log").write_text("")
  with pytest.raises(SystemExit) as e:
    ranking_by_ops.main([str(tmp_path / "run"), str(tmp_path / "run.log")])
  assert e.value.code == 2
  captured = capsys.readouterr()
  assert captured.out == "" and captured.err.count("\n") == 1
  assert (
    captured.err.startswith("ranking_by_ops: no ranking.json in ") and "run.log" in captured.err
  )
