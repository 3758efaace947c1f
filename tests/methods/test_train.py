"""Plain training (`method='train'`) end to end on a tiny CIFAR-10 copy: the run directory, exact
resume after a kill, a population of two seeds, and the checksum fallback to an older checkpoint.

The runs are module-scoped and shared: one uninterrupted reference run is what the interrupted,
the corrupted and the re-run workdirs must reproduce bit for bit.
"""

import contextlib
import io
import json
import logging
import pathlib
import shutil
import signal

import jax
import numpy as np
import pytest
from train_fixtures import run_stopped_by_signal

from jaxml import experiment, main, trunks
from jaxml.checkpoint import Checkpointer
from jaxml.data import cifar10, locate
from jaxml.errors import ConfigError, DataError, OutOfMemoryError
from jaxml.methods import train
from jaxml.metrics.writers import read_jsonl

STEPS, CKPT_EVERY, LOG_EVERY = 12, 4, 2  # the tiny_train_config defaults (tests/conftest.py)


class Killed(Exception):
  """Stands in for a kill: raised from inside the step loop."""


def run_recorded(config, workdir, kill_after=None):
  """Runs `config` on `workdir`, recording the population the step loop last returned.

  With `kill_after=s`, the first call of `train_steps` that starts at or after the checkpoint at
  `s` trains two more steps (so work past the checkpoint is lost, and logged) and raises Killed.
  Returns (summary or None, final population, stderr text).
  """
  seen = {}

  def recording(run, pop, hparams, shared, start, end, *args, **kwargs):
    if kill_after is not None and start >= kill_after:
      seen["pop"], _ = real(run, pop, hparams, shared, start, start + 2, *args, **kwargs)
      # A killed process releases nothing; here the test process goes on, so close its files.
      run.writer.close()
      run.ckpt.close()
      raise Killed(f"killed at step {start + 2}")
    seen["pop"], reached = real(run, pop, hparams, shared, start, end, *args, **kwargs)
    return seen["pop"], reached

  real = trunks.train_steps
  err = io.StringIO()
  summary = None
  with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stderr(err):
    mp.setattr(trunks, "train_steps", recording)
    try:
      summary = main.run_experiment(config, str(workdir))
    except Killed:
      pass
  return summary, seen.get("pop"), err.getvalue()


def restore_final(workdir, template):
  """(step, state) of the newest checkpoint that passes its checksums."""
  with Checkpointer(workdir / "checkpoints") as ckpt:
    step, state, _ = ckpt.restore_latest({"pop": template})
  return step, state["pop"]


def assert_identical(a, b):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), a, b)


def accuracies(summary):
  keys = ("val_accuracy", "test_accuracy", "val_accuracy_per_copy", "test_accuracy_per_copy")
  return {k: summary[k] for k in keys}


@pytest.fixture(scope="module")
def reference(tiny_train_config, tmp_path_factory):
  workdir = tmp_path_factory.mktemp("train_reference")
  summary, pop, _ = run_recorded(tiny_train_config(), workdir)
  return workdir, summary, pop


@pytest.fixture(scope="module")
def resumed(tiny_train_config, tmp_path_factory):
  """Killed at step CKPT_EVERY + 2, then the same config re-run on the same workdir."""
  workdir = tmp_path_factory.mktemp("train_resumed")
  config = tiny_train_config()
  none, _, _ = run_recorded(config, workdir, kill_after=CKPT_EVERY)
  assert none is None
  killed = {
    "checkpoints": sorted(int(p.name) for p in (workdir / "checkpoints").iterdir()),
    "logged_steps": [r["step"] for r in read_jsonl(workdir / "metrics.jsonl")],
  }
  summary, pop, err = run_recorded(config, workdir)
  return workdir, summary, pop, err, killed


def test_run_directory_holds_every_output(reference, tiny_train_config):
  workdir, summary, _ = reference
  config = json.loads((workdir / "config.json").read_text())
  assert config == json.loads(json.dumps(tiny_train_config().to_dict()))
  assert json.loads((workdir / "summary.json").read_text()) == summary

  assert summary["method"] == "train" and summary["steps"] == STEPS
  assert summary["population_size"] == 1
  n_test = cifar10.NUM_CLASSES * 10  # tiny_cifar_dir: 10 test images per class
  for split, n in (("val", 20), ("test", n_test)):
    acc = summary[f"{split}_accuracy"]
    assert 0.0 <= acc <= 1.0
    assert acc * n == pytest.approx(round(acc * n), abs=1e-4)  # a count over all n images
    assert summary[f"{split}_accuracy_per_copy"] == [pytest.approx(acc)]
  assert summary["wall_time_s"] > 0 and summary["images_per_s"] > 0
  assert isinstance(summary["device"], str) and summary["device"]
  assert summary["data_source"].startswith("pickle:")

  rows = read_jsonl(workdir / "metrics.jsonl")
  train_rows = [r for r in rows if "train_loss" in r]
  # every LOG_EVERY steps, plus the last step of each train_steps call (end of epoch 1 is 11)
  assert [r["step"] for r in train_rows] == [2, 4, 6, 8, 10, 11, 12]
  assert all(np.isfinite(r["train_loss"]) and 0 <= r["train_accuracy"] <= 1 for r in train_rows)
  assert train_rows[0]["lr"] > train_rows[-1]["lr"] > 0  # cosine decay
  assert [r["step"] for r in rows if "val_accuracy" in r] == [11, 12]  # epoch end, final
  assert [r["test_accuracy"] for r in rows if "test_accuracy" in r] == [summary["test_accuracy"]]

  (events,) = (workdir / "tensorboard").iterdir()
  data = events.read_bytes()
  assert b"train_loss" in data and b"val_accuracy" in data
  # Checkpoints every CKPT_EVERY steps and at every trunk end (the epoch end 11); keep 2.
  assert sorted(int(p.name) for p in (workdir / "checkpoints").iterdir()) == [11, 12]
  assert (workdir / "plots" / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_final_checkpoint_is_the_trained_state(reference):
  workdir, _, pop = reference
  step, restored = restore_final(workdir, pop)
  assert step == STEPS
  assert int(restored.step[0]) == STEPS
  assert_identical(restored, pop)


def test_resume_after_kill_is_bit_identical(reference, resumed):
  ref_dir, ref_summary, ref_pop = reference
  workdir, summary, pop, err, killed = resumed
  # The kill lost the steps after the checkpoint at 4, but they had been logged.
  assert killed["checkpoints"] == [CKPT_EVERY]
  assert killed["logged_steps"][-1] == CKPT_EVERY + 2
  assert f"from step {CKPT_EVERY}" in err

  assert accuracies(summary) == accuracies(ref_summary)
  assert summary["steps"] == STEPS
  # The rows logged past the checkpoint were dropped and written again: the same log.
  assert read_jsonl(workdir / "metrics.jsonl") == read_jsonl(ref_dir / "metrics.jsonl")
  step, restored = restore_final(workdir, ref_pop)
  _, ref_restored = restore_final(ref_dir, ref_pop)
  assert step == STEPS
  assert_identical(restored, ref_restored)
  assert_identical(pop, ref_pop)


def test_corrupt_latest_checkpoint_resumes_from_the_previous_one(
  reference, tiny_train_config, tmp_path
):
  ref_dir, ref_summary, ref_pop = reference
  workdir = tmp_path / "run"
  shutil.copytree(ref_dir, workdir)
  (workdir / "summary.json").unlink()  # a run stopped after its last checkpoint, not finished
  # Valid Orbax data with the wrong values (step 11's arrays under step 12): only the checksums
  # can tell, so the run must fall back to step 11 and train 11 -> 12 again.
  latest = workdir / "checkpoints" / str(STEPS)
  shutil.rmtree(latest / "state")
  shutil.copytree(workdir / "checkpoints" / "11" / "state", latest / "state")

  summary, pop, err = run_recorded(tiny_train_config(), workdir)
  assert "from step 11" in err
  assert accuracies(summary) == accuracies(ref_summary)
  assert read_jsonl(workdir / "metrics.jsonl") == read_jsonl(ref_dir / "metrics.jsonl")
  step, restored = restore_final(workdir, ref_pop)
  assert step == STEPS
  assert_identical(restored, ref_pop)
  assert_identical(pop, ref_pop)


def test_population_of_two_trains_two_seeds(tiny_train_config, tmp_path):
  config = tiny_train_config(**{"population.size": 2, "num_steps": 4})
  summary, pop, _ = run_recorded(config, tmp_path)
  assert summary["population_size"] == 2 and summary["steps"] == 4
  for split in ("val", "test"):
    per_copy = summary[f"{split}_accuracy_per_copy"]
    assert len(per_copy) == 2 and all(0 <= a <= 1 for a in per_copy)
    assert summary[f"{split}_accuracy"] == pytest.approx(np.mean(per_copy))
    assert summary[f"{split}_accuracy_std"] == pytest.approx(np.std(per_copy))
  rows = [r for r in read_jsonl(tmp_path / "metrics.jsonl") if "train_loss_per_copy" in r]
  assert [len(r["train_loss_per_copy"]) for r in rows] == [2, 2]

  step, restored = restore_final(tmp_path, pop)
  assert step == 4
  assert_identical(restored, pop)
  for leaf in jax.tree.leaves(restored.params):
    assert leaf.shape[0] == 2
    assert not np.array_equal(np.asarray(leaf[0]), np.asarray(leaf[1]))  # own init, own path
  assert not np.array_equal(np.asarray(restored.rng[0]), np.asarray(restored.rng[1]))


def test_a_batch_larger_than_the_train_split_is_refused_before_anything_is_written(
  tiny_train_config, tmp_path
):
  workdir = tmp_path / "run"
  with pytest.raises(ConfigError, match="batch_size=1000 exceeds the 180 training images"):
    main.run_experiment(tiny_train_config(batch_size=1000), str(workdir))
  assert not workdir.exists()


@pytest.mark.parametrize(
  "overrides, match",
  [
    ({"optim.warmup_epochs": 2.0}, "warmup_epochs=2.0 is 22 steps, not shorter than the run's 12"),
    ({"eval_batch_size": 500}, r"eval_batch_size=500 exceeds the largest eval split \(100 images"),
  ],
)
def test_sizes_that_only_the_data_can_refuse_are_refused_before_anything_is_written(
  tiny_train_config, tmp_path, overrides, match
):
  workdir = tmp_path / "run"
  with pytest.raises(ConfigError, match=match):
    main.run_experiment(tiny_train_config(**overrides), str(workdir))
  assert not workdir.exists()


def test_out_of_device_memory_is_one_error_and_a_fresh_workdir_is_removed(
  tiny_train_config, tmp_path, monkeypatch
):
  """XLA's RESOURCE_EXHAUSTED (a model or batch too big for the device) becomes one line, exit 6;
  the new workdir it had started to write holds no checkpoint, so it is removed."""
  workdir = tmp_path / "run"

  def exhausted(config, wd):
    (pathlib.Path(wd) / "tensorboard").mkdir(parents=True)
    raise jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating 9 bytes.\nmore")

  monkeypatch.setattr(train, "run", exhausted)
  with pytest.raises(OutOfMemoryError, match=r"Out of memory allocating 9 bytes\.\): reduce") as e:
    main.run_experiment(tiny_train_config(), str(workdir))
  assert e.value.exit_code == 6 and "removed the new workdir" in str(e.value)
  assert not workdir.exists()
  # A workdir that already existed (a resumed run) is never removed.
  workdir.mkdir()
  with pytest.raises(OutOfMemoryError) as e:
    main.run_experiment(tiny_train_config(), str(workdir))
  assert workdir.exists() and "removed" not in str(e.value)


def test_the_run_prints_its_remaining_time_once(tiny_train_config, tmp_path, monkeypatch):
  # A window of 2 steps and no minimum time, so that the 12-step run is long enough to measure.
  monkeypatch.setattr(experiment.EtaEstimate.__init__, "__defaults__", (2, 0.0))
  _, _, err = run_recorded(tiny_train_config(), tmp_path)
  lines = [line for line in err.splitlines() if "of training left" in line]
  assert len(lines) == 1 and lines[0].startswith("jaxml: about ")
  assert "steps at" in lines[0] and "on cpu" in lines[0]


# -- which CIFAR-10 copies the trainer accepts (no compiling: data loading only) --------------


def test_explicit_data_dir_accepts_a_small_copy_and_says_so(tiny_train_config, caplog):
  config = tiny_train_config()
  with caplog.at_level(logging.WARNING):
    data = experiment.load_datasets(config.data, config.seed)
  assert (len(data.train.labels), len(data.val.labels), len(data.test.labels)) == (180, 20, 100)
  assert "100 test images, not the full 10000" in caplog.text


def test_default_search_rejects_an_incomplete_copy(
  tiny_train_config, tiny_cifar_dir, monkeypatch, tmp_path
):
  """Found via $JAXML_DATA_DIR (not config.data.dir), a small copy is an incomplete CIFAR-10."""
  monkeypatch.setenv(locate.ENV_VAR, str(tiny_cifar_dir))
  monkeypatch.setattr(locate, "REPO_ROOT", tmp_path / "no_repo")  # no ../shared/data
  config = tiny_train_config(**{"data.dir": ""})
  with pytest.raises(DataError, match="images per class, expected 5000"):
    experiment.load_datasets(config.data, config.seed)


def test_explicit_dir_without_data_is_refused_not_replaced(
  tiny_train_config, tiny_cifar_dir, monkeypatch, tmp_path
):
  monkeypatch.setenv(locate.ENV_VAR, str(tiny_cifar_dir))  # the default search would find data
  monkeypatch.setattr(locate, "REPO_ROOT", tmp_path / "no_repo")
  (tmp_path / "empty").mkdir()
  config = tiny_train_config(**{"data.dir": str(tmp_path / "empty")})
  with pytest.raises(DataError, match=f"config.data.dir={tmp_path / 'empty'} holds no CIFAR-10"):
    experiment.load_datasets(config.data, config.seed)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_saves_and_the_rerun_continues_bit_identically(
  reference, tiny_train_config, tmp_path, monkeypatch, signum
):
  ref_dir, ref_summary, ref_pop = reference
  err = run_stopped_by_signal(
    lambda: main.run_experiment(tiny_train_config(), str(tmp_path)), monkeypatch, 7, signum
  )
  assert err.exit_code == 128 + signum and "at step 7" in str(err) and "Re-run" in str(err)
  assert 7 in [int(p.name) for p in (tmp_path / "checkpoints").iterdir()]
  summary = main.run_experiment(tiny_train_config(), str(tmp_path))
  assert accuracies(summary) == accuracies(ref_summary)
  assert read_jsonl(tmp_path / "metrics.jsonl") == read_jsonl(ref_dir / "metrics.jsonl")
  assert_identical(restore_final(tmp_path, ref_pop)[1], restore_final(ref_dir, ref_pop)[1])
