"""The soak tool's pieces (the soak itself takes minutes and is not run here): every corruption
it makes is one `jaxml.checkpoint` detects, and its progress and final-state readers."""

import importlib.util
import json
import logging
import pathlib

import jax.numpy as jnp
import pytest

from jaxml.checkpoint import Checkpointer

ROOT = pathlib.Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("soak", ROOT / "tools/soak.py")
soak = importlib.util.module_from_spec(spec)
spec.loader.exec_module(soak)


@pytest.mark.parametrize("kind", soak.CORRUPTIONS)
def test_each_corruption_is_detected_and_the_previous_step_used(tmp_path, kind, caplog):
  state = {"w": jnp.arange(4096, dtype=jnp.float32), "b": jnp.ones(3)}
  with Checkpointer(tmp_path / "checkpoints") as ckpt:
    ckpt.save(4, state)
    ckpt.save(8, {"w": state["w"] + 1, "b": state["b"]})
  what = soak.corrupt(soak.newest_step(tmp_path), kind)
  assert what
  with caplog.at_level(logging.WARNING), Checkpointer(tmp_path / "checkpoints") as ckpt:
    step, restored, _ = ckpt.restore_latest(state)
  assert step == 4 and jnp.array_equal(restored["w"], state["w"])
  assert soak.CORRUPT_WARNING in caplog.text


def test_progress_and_final_state_readers(tmp_path):
  assert soak.logged_step(tmp_path) == 0 and soak.newest_step(tmp_path) is None
  rows = [{"step": 2, "train_loss": 1.0}, {"step": 4, "trunk": 0}]
  text = "\n".join(json.dumps(r) for r in rows) + '\n{"step": 6, "tr'  # torn by a kill
  (tmp_path / "metrics.jsonl").write_text(text)
  assert soak.logged_step(tmp_path) == 4
  with Checkpointer(tmp_path / "checkpoints") as ckpt:
    ckpt.save(4, {"w": jnp.zeros(2)})
  summary = {"test_accuracy": 0.5, "wall_time_s": 3.0, "images_per_s": 9.0, "train_time_s": 1.0}
  (tmp_path / "summary.json").write_text(json.dumps(summary))
  kept, checksums = soak.final_state(tmp_path)
  assert kept == {"test_accuracy": 0.5} and len(checksums) == 1
