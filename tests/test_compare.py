"""jaxml.compare: the table of run directories, its differing config keys, markdown, bad input.

The fake run directories hold config.json as `RunWriter.write_config` writes it (the config's
`to_dict()` as JSON) and summary.json with the fields of real runs (a tiny train run with K = 1
and K = 2, an OHL run, a tabular run), so the tool is tested on the formats it reads.
"""

import json
import pathlib

import pytest
from train_fixtures import REPO_ROOT, tiny_method_config

from jaxml import compare, config_cli
from jaxml import main as jaxml_main

TRAIN_K1 = {
  "data_source": "pickle:/data/cifar-10-batches-py",
  "device": "1x cpu",
  "epochs": 1.0909090909090908,
  "images_per_s": 39.051099767439474,
  "jax_version": "0.10.2",
  "mapping": "loop",
  "method": "train",
  "population_size": 1,
  "steps": 12,
  "test_accuracy": 0.30000001192092896,
  "test_accuracy_per_copy": [0.30000001192092896],
  "test_accuracy_std": 0.0,
  "train_time_s": 4.916634900000645,
  "trunk_steps": 11,
  "trunks": 2,
  "val_accuracy": 0.30000001192092896,
  "val_accuracy_per_copy": [0.30000001192092896],
  "val_accuracy_std": 0.0,
  "wall_time_s": 7.025350111001899,
}
TRAIN_K2 = {
  **TRAIN_K1,
  "images_per_s": 1074.0687086648026,
  "population_size": 2,
  "test_accuracy": 0.13000000081956387,
  "test_accuracy_per_copy": [0.05999999865889549, 0.20000000298023224],
  "test_accuracy_std": 0.07000000216066837,
  "val_accuracy": 0.15000000223517418,
  "val_accuracy_per_copy": [0.10000000149011612, 0.20000000298023224],
  "val_accuracy_std": 0.05000000074505806,
  "wall_time_s": 1234.5,
}
OHL = {  # after the final broadcast: one model, no per-copy lists
  "best_copy_per_trunk": [1, 0, 1],
  "best_val_per_trunk": [0.15, 0.2, 0.2],
  "data_source": "pickle:/data/cifar-10-batches-py",
  "device": "1x cpu",
  "epochs": 0.5454545454545454,
  "images_per_s": 12.861558142205613,
  "jax_version": "0.10.2",
  "learn_theta": True,
  "mapping": "vmap",
  "method": "ohl",
  "population_size": 2,
  "rewards": [[0.1, 0.15], [0.2, 0.1], [0.15, 0.2]],
  "steps": 12,
  "test_accuracy": 0.20000000298023224,
  "theta_kl_from_uniform": 0.0018310546875,
  "top_pairs": [["Color:0.3|Contrast:1.3", 0.00138]],
  "train_time_s": 14.928206821998174,
  "trunk_steps": 4,
  "trunks": 3,
  "val_accuracy": 0.20000000298023224,
  "wall_time_s": 26.776734196999314,
}
TABULAR = {
  "dataset": "cifar10",
  "method": "tabular",
  "methods": ["random", "rea"],
  "num_seeds": 6,
  "objective": "NAS-Bench-201 200-epoch cifar10 test accuracy (noise-free)",
  "optimum": 92.7870101928711,
  "queries": 50,
  "random": {"compile_s": 1.17, "mean_test": 88.96605809529622, "std_test": 0.9142308833456095},
  "rea": {"compile_s": 3.75, "mean_test": 90.43655395507812, "std_test": 1.1292351100344336},
}


def write_run(path: pathlib.Path, config, summary=None, metrics=(), torn: str = "") -> str:
  path.mkdir(parents=True)
  (path / "config.json").write_text(json.dumps(config.to_dict(), indent=2, sort_keys=True))
  if summary is not None:
    (path / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
  rows = "".join(json.dumps(r, sort_keys=True) + "\n" for r in metrics)
  (path / "metrics.jsonl").write_text(rows + torn)
  return str(path)


def train_metrics(val_best: float | None) -> list[dict]:
  rows = [{"lr": 0.05, "step": s, "train_accuracy": 0.1, "train_loss": 2.3} for s in (2, 4, 6)]
  val = {"step": 6, "trunk": 0, "val_accuracy": 0.2, "val_loss": 2.2}
  if val_best is not None:
    val.update(val_accuracy_best=val_best, val_accuracy_per_copy=[0.2, val_best])
  return rows + [val]


@pytest.fixture
def runs(tmp_path, tiny_train_config):
  """a: K = 1, seed 0; b: K = 2, seed 1, lr 0.1, another cache dir; c: unfinished, seed 2."""
  a = write_run(tmp_path / "a", tiny_train_config(), TRAIN_K1, train_metrics(None))
  b_config = tiny_train_config(**{"population.size": 2, "seed": 1, "optim.lr": 0.1})
  b_config.data.cache_dir = "/elsewhere/cache"
  b = write_run(tmp_path / "b", b_config, TRAIN_K2, train_metrics(0.35))
  torn = '{"step": 8, "train_lo'  # a running job's half-written line
  c = write_run(tmp_path / "c", tiny_train_config(seed=2), None, train_metrics(None)[:2], torn)
  return a, b, c


def as_dicts(header, rows):
  return [dict(zip(header, row)) for row in rows]


def test_rows_and_the_keys_the_runs_differ_in(runs):
  header, rows = compare.build_table(list(runs))
  # seed first; population.size is the K column; data.cache_dir is ignored
  assert header[:7] == ["run", "status", "method", "K", "seed", "optim.lr", "steps"]
  assert header[7:] == ["test acc", "val acc", "best val", "wall s", "img/s", "device"]
  a, b, c = as_dicts(header, rows)
  assert a == {
    **dict(run="a", status="finished", method="train", K="1", seed="0", steps="12"),
    **{"optim.lr": "0.05", "test acc": "0.3000", "val acc": "0.3000", "best val": "0.2000"},
    **{"wall s": "7.0", "img/s": "39", "device": "1x cpu"},
  }
  assert (b["K"], b["seed"], b["optim.lr"]) == ("2", "1", "0.1")
  assert (b["test acc"], b["val acc"]) == ("0.1300 ± 0.0700", "0.1500 ± 0.0500")
  assert (b["best val"], b["wall s"], b["img/s"]) == ("0.3500", "1,234.5", "1,074")
  # unfinished: listed with what its metrics show so far (the torn last line skipped)
  assert (c["status"], c["seed"], c["steps"], c["best val"]) == ("unfinished", "2", "4", "-")
  assert {c[k] for k in ("test acc", "val acc", "wall s", "img/s", "device")} == {"-"}


def test_keys_are_shown_even_where_equal(runs):
  header, rows = compare.build_table(list(runs[:2]), keys=["model.name", "data.cache_dir"])
  assert header[4:8] == ["model.name", "data.cache_dir", "seed", "optim.lr"]
  assert [r[4] for r in rows] == ["tiny_cnn", "tiny_cnn"]
  assert rows[1][5] == "/elsewhere/cache"


def test_method_sections_and_the_tabular_summary(tmp_path, tiny_train_config, tiny_cifar_dir):
  train = write_run(tmp_path / "train", tiny_train_config(), TRAIN_K1)
  ohl_config = tiny_method_config(
    f"{REPO_ROOT}/experiments/ohl/cifar10_resnet18.py:smoke", tiny_cifar_dir, tmp_path / "cache"
  )
  ohl = write_run(tmp_path / "ohl", ohl_config, OHL)
  tab_config = config_cli.load_config_file(
    f"{REPO_ROOT}/experiments/tabular/nb201_cifar10.py:smoke"
  )
  tab = write_run(tmp_path / "tab", tab_config, TABULAR)
  header, rows = compare.build_table([train, ohl, tab])
  # ohl.* is only in the OHL run: the method column says it; same_init differs between methods
  assert not any(h.startswith("ohl.") for h in header)
  assert "population.same_init" in header and header[-1] == "notes"
  train_row, ohl_row, tab_row = as_dicts(header, rows)
  assert (ohl_row["method"], ohl_row["K"], ohl_row["test acc"]) == ("ohl", "2", "0.2000")
  assert ohl_row["notes"] == train_row["notes"] == "-"
  assert tab_row["method"] == "tabular" and tab_row["status"] == "finished"
  assert tab_row["population.same_init"] == tab_row["test acc"] == tab_row["K"] == "-"
  assert tab_row["notes"] == (
    "random 88.97 ± 0.91, rea 90.44 ± 1.13 (cifar10 test %, 6 seeds x 50 queries)"
  )


def test_markdown_holds_the_command_date_and_rows(runs, tmp_path, capsys):
  out = tmp_path / "table.md"
  compare.main([*runs, "--markdown", str(out)])
  stdout = capsys.readouterr().out
  lines = stdout.splitlines()
  assert lines[0].split()[:7] == ["run", "status", "method", "K", "seed", "optim.lr", "steps"]
  assert set(lines[1]) == {"-", " "}
  assert lines[2].split()[:4] == ["a", "finished", "train", "1"]
  text = out.read_text()
  assert f"`python -m jaxml.compare {' '.join(runs)} --markdown {out}`" in text
  assert "| run | status | method | K | seed | optim.lr | steps | test acc |" in text
  assert "| b | finished | train | 2 | 1 | 0.1 | 12 | 0.1300 ± 0.0700 | 0.1500 ± 0.0500 |" in text
  assert "| c | unfinished | train | 1 | 2 | 0.05 | 4 | - | - | - | - | - | - |" in text
  assert "mean over the K copies" in text


def test_not_a_run_directory_is_one_line_and_exit_2(runs, tmp_path, capsys):
  out = tmp_path / "table.md"
  (tmp_path / "empty").mkdir()
  for bad, says in [
    (tmp_path / "empty", "is not a run directory (no config.json)"),
    (tmp_path / "nope", "does not exist"),
    (tmp_path, "it holds 3 run directories: pass them"),
  ]:
    with pytest.raises(SystemExit) as e:
      compare.main([runs[0], str(bad), "--markdown", str(out)])
    assert e.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and not out.exists()
    assert captured.err.count("\n") == 1 and says in captured.err, captured.err
  with pytest.raises(SystemExit) as e:
    compare.main([runs[0], "--keys", "optim.lrr"])
  assert e.value.code == 2
  assert "nearest: optim.lr" in capsys.readouterr().err


def test_a_real_tiny_run(tiny_train_config, tmp_path):
  """The tool reads what a run really writes (guards the summary field names)."""
  workdir = tmp_path / "real"
  summary = jaxml_main.run_experiment(tiny_train_config(num_steps=4), str(workdir))
  header, rows = compare.build_table([str(workdir)])
  row = dict(zip(header, rows[0]))
  assert row["status"] == "finished" and row["method"] == "train" and row["steps"] == "4"
  assert row["test acc"] == f"{summary['test_accuracy']:.4f}"
  assert row["val acc"] == row["best val"] == f"{summary['val_accuracy']:.4f}"
  assert row["wall s"] == f"{summary['wall_time_s']:,.1f}"
  assert row["img/s"] == f"{summary['images_per_s']:,.0f}" and row["device"] != "-"


def test_econas_search_notes_name_the_answer():
  summary = {
    "method": "econas_search",
    "found_architecture": "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|",
    "found_test_accuracy_nb201": 93.123,
    "found_val_accuracy": 0.6123,
    "found_stage": 3,
    "trainings": 48,
    "networks_trained": 28,
    "children": "mutation",
  }
  text = compare.notes(summary)
  assert text.startswith("found |nor_conv_3x3~0|+") and "NB201 93.12 %" in text
  assert "val 0.612 at stage 3" in text and "48 trainings of 28 networks (mutation" in text
  del summary["found_test_accuracy_nb201"]  # a space without a table: no accuracy to show
  assert "NB201" not in compare.notes(summary)
