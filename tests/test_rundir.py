"""`jaxml.rundir` through `jaxml.main.run_experiment`: a workdir holding another config's run is
refused with the differing keys named and nothing written; a finished run is not repeated; a
run refused at start leaves the directory's config.json as it was; the end-of-run lines."""

import json

import pytest

from jaxml import main, rundir
from jaxml.errors import ConfigError, DataError
from jaxml.metrics.writers import read_jsonl


def _files(workdir):
  return {p: p.stat().st_mtime_ns for p in workdir.rglob("*") if p.is_file()}


def test_finished_run_is_not_repeated_and_another_config_is_refused(tiny_train_config, tmp_path):
  config = tiny_train_config()
  first = main.run_experiment(config, str(tmp_path))
  assert first[rundir.FINISHED_KEY] is True
  before, rows = _files(tmp_path), read_jsonl(tmp_path / "metrics.jsonl")

  again = main.run_experiment(tiny_train_config(**{"progress": True}), str(tmp_path))
  assert again == first  # read back: no second final evaluation
  assert _files(tmp_path) == before and read_jsonl(tmp_path / "metrics.jsonl") == rows

  with pytest.raises(ConfigError, match=r"another config: optim\.lr \(0\.05 -> 0\.123\)"):
    main.run_experiment(tiny_train_config(**{"optim.lr": 0.123}), str(tmp_path))
  assert _files(tmp_path) == before


def test_refused_run_leaves_config_json_as_it_was(tiny_train_config, tmp_path):
  (tmp_path / "config.json").write_text('{"seed": 123}')
  config = tiny_train_config(**{"data.dir": str(tmp_path / "nowhere")})
  with pytest.raises(DataError):
    main.run_experiment(config, str(tmp_path))
  assert json.loads((tmp_path / "config.json").read_text()) == {"seed": 123}


def test_neutral_keys_may_differ(tmp_path):
  (tmp_path / "checkpoints" / "4").mkdir(parents=True)
  saved = {"seed": 0, "progress": False, "log_every_steps": 5, "optim": {"lr": 0.1}}
  (tmp_path / "config.json").write_text(json.dumps(saved))

  class Config(dict):
    def to_dict(self):
      return dict(self)

  rundir.check_same_config(Config(saved, progress=True, log_every_steps=1), str(tmp_path))
  with pytest.raises(ConfigError, match="seed"):
    rundir.check_same_config(Config(saved, seed=1), str(tmp_path))


def test_result_lines_name_the_headline_and_the_outputs(tmp_path):
  (tmp_path / "plots").mkdir()
  (tmp_path / "tensorboard").mkdir()
  (tmp_path / "tensorboard" / "events.out.tfevents.1").write_text("")
  summary = {"test_accuracy": 0.91234, "val_accuracy": 0.9, "wall_time_s": 125.0}
  lines = rundir.result_lines(summary, str(tmp_path))
  assert lines[0] == "test accuracy: 0.9123"
  assert "wall time: 2 min" in lines
  assert f"TensorBoard: tensorboard --logdir {tmp_path}" in lines
  assert any(line.startswith("plots: ") for line in lines)


def test_a_run_kept_in_sub_directories_gets_a_top_config_once_it_holds_a_checkpoint(tmp_path):
  class Config(dict):
    def to_dict(self):
      return dict(self)

  rundir.record_config(Config(seed=3), str(tmp_path))  # nothing to resume yet: no file
  assert not (tmp_path / "config.json").exists()
  (tmp_path / "stage_supernet" / "checkpoints" / "5").mkdir(parents=True)
  rundir.record_config(Config(seed=3), str(tmp_path))
  assert json.loads((tmp_path / "config.json").read_text()) == {"seed": 3}
  with pytest.raises(ConfigError, match=r"seed \(3 -> 4\)"):
    rundir.check_same_config(Config(seed=4), str(tmp_path))
