"""tools/nb201_leaderboard.py: the run commands it launches and the one table it prints."""

import importlib.util
import json
import pathlib

import pytest
from train_fixtures import write_conv_count_table

from jaxml.spaces import nb201_encoding

ROOT = pathlib.Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("lb", ROOT / "tools/nb201_leaderboard.py")
lb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lb)


def finished(wd: pathlib.Path, summary: dict, config: dict | None = None) -> None:
  """A run directory as jaxml.main leaves it (summary.json with the finished mark)."""
  wd.mkdir(parents=True)
  (wd / "summary.json").write_text(json.dumps({**summary, "finished": True}))
  (wd / "config.json").write_text(json.dumps(config or {}))


# Minimal summaries in the formats the methods write (keys the leaderboard reads, plus the optimum)
def tabular(acc: float) -> dict:
  one = {"mean_test": acc, "std_test": 0.0, "queries": 150, "compile_s": 3.0, "wall_s": 0.6}
  searches = {n: dict(one) for n in ("random", "rea", "reinforce", "spos")}
  return {"method": "tabular", "num_seeds": 1, "optimum": 94.37333679199219, **searches}


def econas(acc: float, wall: float, warm: dict | None = None) -> dict:
  return {"found_test_accuracy_nb201": acc, "networks_trained": 30, "trainings": 48,
          "wall_time_s": wall, "warm_start": warm, "nb201_optimum": 94.37333679199219}  # fmt: skip


def spos(acc: float, epochs: float, copies: int, wall: float) -> dict:
  search = {"best_true_accuracy_mean": acc, "table_optimum": 94.37333679199219}
  return {"search": search, "epochs": epochs, "population_size": copies, "wall_time_s": wall}


def darts(acc: float) -> dict:
  return {"final_true_accuracy_mean": acc, "epochs": 20.0, "steps": 2000, "wall_time_s": 720.0,
          "table_optimum": 94.37333679199219}  # fmt: skip


def test_commands_name_the_variant_seed_and_source(tmp_path):
  def cmd(run, seed=2):
    return lb.command(run, seed, tmp_path)

  expect = {
    "tabular": "experiments/tabular/nb201_cifar10.py",
    "econas": "experiments/econas/search_nb201.py:cpu",
    "econas_random": "experiments/econas/search_nb201.py:cpu,random",
    "econas_warm": "experiments/econas/search_nb201.py:cpu,warm",
    "spos": "experiments/spos/nb201_cifar10.py:cpu",
    "fewshot": "experiments/spos/nb201_cifar10.py:cpu,fewshot",
    "pcnas": "experiments/pcnas/nb201_cifar10.py:cpu",
    "darts": "experiments/darts/nb201_cifar10.py:cpu",
    "darts_2nd": "experiments/darts/nb201_cifar10.py:cpu,second_order",
    "gdas": "experiments/darts/nb201_cifar10.py:cpu,gdas",
    "darts_minus": "experiments/darts/nb201_cifar10.py:cpu,darts_minus",
  }
  assert set(expect) == set(lb.RUNS) and {m[1] for m in lb.METHODS.values()} == set(lb.RUNS)
  for run, config in expect.items():
    c = cmd(run)
    assert c[c.index("--config") + 1] == config, run
    assert c[c.index("--workdir") + 1] == str(tmp_path / f"{run}_s2")
    assert "--config.seed=2" in c
    assert (ROOT / config.split(":")[0]).exists()
    # the tabular config has no progress bar (an unknown key would fail the run); one seed a run
    assert ("--config.progress=False" in c) == (run != "tabular")
  assert "--config.num_seeds=1" in cmd("tabular")
  # few-shot starts from the SPOS run of its own seed
  assert cmd("fewshot")[-1] == f"--config.spos.init_from={tmp_path / 'spos_s2'}"
  assert not any("init_from" in a for a in cmd("spos"))
  dirs = {"spos": "/x/spos20_s{seed}"}
  assert lb.command("fewshot", 1, tmp_path, dirs)[-1] == "--config.spos.init_from=/x/spos20_s1"
  assert lb.runs_needed(["fewshot", "rs", "rea"]) == ["tabular", "spos", "fewshot"]


def test_run_all_skips_finished_runs(tmp_path, monkeypatch):
  finished(tmp_path / "spos_s0", spos(88.0, 30.0, 1, 100.0))
  launched = []
  monkeypatch.setattr(lb.subprocess, "run", lambda cmd, **kw: launched.append(cmd))
  lb.main(["--root", str(tmp_path), "--seeds", "0,1", "--methods", "fewshot"])
  runs = [(c[c.index("--workdir") + 1], c[-1]) for c in launched]
  assert [pathlib.Path(w).name for w, _ in runs] == ["fewshot_s0", "spos_s1", "fewshot_s1"]
  assert runs[2][1] == f"--config.spos.init_from={tmp_path / 'spos_s1'}"


def test_table_only_means_over_seeds_and_marks_missing_runs(tmp_path, capsys):
  r = tmp_path / "lb"
  finished(r / "tabular_s0", tabular(93.0))
  finished(r / "tabular_s1", tabular(94.0))
  finished(r / "econas_warm_s0", econas(92.0, 3600.0, {"wall_time_s": 360.0}))
  finished(r / "econas_warm_s2", econas(94.0, 7200.0, {"wall_time_s": 0.0}))
  finished(r / "spos_s0", spos(86.0, 30.0, 1, 1800.0))
  init = {"spos": {"init_from": str(r / "spos_s0")}}
  finished(r / "fewshot_s0", spos(90.0, 30.0, 5, 5400.0), init)
  (r / "pcnas_s0").mkdir()  # started, not finished
  # DARTS seed 1 lives elsewhere (an existing run), named by --dirs
  finished(tmp_path / "old" / "cpu_s1", darts(54.3))
  methods = "rs,econas_warm,fewshot,pcnas,darts,gdas"
  lb.main(["--root", str(r), "--methods", methods, "--table_only",
           "--dirs", f"darts={tmp_path}/old/cpu_s{{seed}}"])  # fmt: skip
  out = capsys.readouterr().out
  assert (
    "| RS on the table | 93.50 ± 0.50 (n=2) | 93.00, 94.00, not run | 150 table queries | 0.001 "
    "| 93.70 ± 0.36 (NB201 paper Table 5, REFERENCES.md §7d) |"
  ) in out
  # warm start: its zero-cost scoring counts as search time (1.1 h and 2 h)
  assert (
    "| EcoNAS + zero-cost warm start | 93.00 ± 1.00 (n=2) | 92.00, not run, 94.00 | "
    "30 networks trained, 48 trainings | 1.55 | not published |"
  ) in out
  # a few-shot run of 5 x 30 epochs (1.5 h) on a SPOS run of 30 epochs (0.5 h)
  assert "| 90.00 ± 0.00 (n=1) | 90.00, not run, not run | 180 supernet epochs | 2 |" in out
  assert "| PC-NAS | no finished seed | unfinished, not run, not run |" in out
  assert "| DARTS 1st order | 54.30 ± 0.00 (n=1) | not run, 54.30, not run |" in out
  assert "| GDAS | no finished seed | not run, not run, not run |  |  | 93.61 ± 0.09" in out
  assert "optimum of the table (NB201 CIFAR-10 200-epoch test): 94.37" in out
  assert "nearest in REFERENCES.md: the released few-shot supernet" in out


def test_a_run_of_another_kind_is_shown_not_averaged(tmp_path, capsys):
  thousand = {**tabular(93.0), "num_seeds": 1000}  # a mean over 1,000 seeds is no seed's cell
  finished(tmp_path / "tabular_s0", thousand)
  (tmp_path / "tabular_s1").mkdir()
  (tmp_path / "tabular_s1" / "summary.json").write_text(json.dumps(tabular(94.0)))  # unmarked
  lb.main(["--root", str(tmp_path), "--seeds", "0,1", "--methods", "rea", "--table_only"])
  out = capsys.readouterr().out
  assert (
    "| REA on the table | no finished seed | unreadable (ValueError: num_seeds=1000, not 1)" in out
  )
  assert ", unfinished |" in out


def test_zero_cost_pick_is_the_warm_starts_top_cell_looked_up_in_its_table(tmp_path, capsys):
  acc = write_conv_count_table(tmp_path)  # 30 + 10 x (3x3 convs) + jitter
  top = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"
  second = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|"
  warm = {"measure": "synflow", "pool": 64, "wall_time_s": 90.0, "picked": [top, second]}
  config = {"econas": {"table_dir": str(tmp_path)}}
  finished(tmp_path / "lb" / "econas_warm_s0", econas(93.0, 3600.0, warm), config)
  lb.main(
    ["--root", str(tmp_path / "lb"), "--methods", "zero_cost", "--seeds", "0", "--table_only"]
  )
  out = capsys.readouterr().out
  want = acc[nb201_encoding.encoding_to_index(nb201_encoding.from_string(top))]
  # one 3x3 conv: the first pick's cell, not the better second one or the search's found cell
  assert 40 < want < 41
  assert f"| {want:.2f} ± 0.00 (n=1) | {want:.2f} | 64 cells scored (synflow) | 0.025 |" in out
  # without a table to look the pick up in, the seed is shown as unreadable, not averaged
  finished(tmp_path / "lb" / "econas_warm_s1", econas(93.0, 3600.0, warm), {"econas": {}})
  lb.main(
    ["--root", str(tmp_path / "lb"), "--methods", "zero_cost", "--seeds", "1", "--table_only"]
  )
  assert "unreadable (KeyError: 'table_dir')" in capsys.readouterr().out


@pytest.mark.parametrize(
  "argv",
  [["--methods", "darts,nosuch"], ["--dirs", "nosuch=x{seed}"], ["--dirs", "darts=runs/no_seed"]],
)
def test_bad_arguments_are_refused_in_one_line(argv, capsys):
  with pytest.raises(SystemExit) as e:
    lb.main(["--root", "x", "--table_only", *argv])
  assert e.value.code != 0
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and err.startswith("nb201_leaderboard: ")
