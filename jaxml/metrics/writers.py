"""Run-directory writers: metrics.jsonl, TensorBoard events, config.json and summary.json.

A run is a directory (DESIGN.md): everything a method reports goes through `RunWriter`, so every
method's workdir has the same shape and a resumed run appends to the same files.
"""

import json
import os
import pathlib
import tempfile
from typing import Any

import jax
import numpy as np


def to_jsonable(value: Any) -> Any:
  """Converts numpy / jax scalars and arrays (and nested containers) to plain Python."""
  if isinstance(value, dict):
    return {str(k): to_jsonable(v) for k, v in value.items()}
  if isinstance(value, list | tuple):
    return [to_jsonable(v) for v in value]
  if isinstance(value, jax.Array | np.ndarray | np.generic):
    arr = np.asarray(value)
    return arr.item() if arr.ndim == 0 else arr.tolist()
  if isinstance(value, float | int | str | bool) or value is None:
    return value
  return str(value)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
  """Writes JSON via a temp file + rename, so a killed process never leaves half a file."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
  with os.fdopen(fd, "w") as f:
    json.dump(to_jsonable(obj), f, indent=2, sort_keys=True)
    f.write("\n")
  os.replace(tmp, path)


def read_jsonl(path: str | os.PathLike) -> list[dict]:
  """Reads a metrics.jsonl file (skipping a torn last line from a killed run)."""
  rows = []
  p = pathlib.Path(path)
  if not p.exists():
    return rows
  for line in p.read_text().splitlines():
    try:
      rows.append(json.loads(line))
    except json.JSONDecodeError:
      continue
  return rows


class RunWriter:
  """Appends scalar metrics to `metrics.jsonl` and TensorBoard; writes config and summary.

  Only process 0 writes (multi-host safe). On resume, rows with a step beyond the restored
  checkpoint are dropped first (`truncate_after`), so the log matches the resumed state exactly.
  """

  def __init__(self, workdir: str | os.PathLike, tensorboard: bool = True):
    self.workdir = pathlib.Path(workdir)
    self.active = jax.process_index() == 0
    self._tb = None
    self._tensorboard = tensorboard and self.active
    if self.active:
      self.workdir.mkdir(parents=True, exist_ok=True)

  def _tb_writer(self):
    """The TensorBoard writer, created at the first scalar: a run that stops before logging
    anything (e.g. on bad data) starts no writer thread, which on Python 3.12 would fail at
    interpreter exit ("can't create new thread at interpreter shutdown") if never closed."""
    if self._tb is None and self._tensorboard:
      from tensorboardX import SummaryWriter  # light, no TensorFlow needed

      self._tb = SummaryWriter(str(self.workdir / "tensorboard"))
    return self._tb

  @property
  def metrics_path(self) -> pathlib.Path:
    return self.workdir / "metrics.jsonl"

  def truncate_after(self, step: int) -> None:
    """Drops logged rows with step > `step` (they belong to work lost by a kill)."""
    if not self.active or not self.metrics_path.exists():
      return
    rows = [r for r in read_jsonl(self.metrics_path) if r.get("step", -1) <= step]
    tmp = self.metrics_path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    os.replace(tmp, self.metrics_path)

  def write_scalars(self, step: int, scalars: dict[str, Any]) -> None:
    if not self.active:
      return
    row = {"step": int(step), **to_jsonable(scalars)}
    with open(self.metrics_path, "a") as f:
      f.write(json.dumps(row, sort_keys=True) + "\n")
    tb = self._tb_writer()
    if tb is not None:
      for k, v in row.items():
        if k != "step" and isinstance(v, int | float) and not isinstance(v, bool):
          tb.add_scalar(k, v, int(step))

  def write_config(self, config) -> None:
    if self.active:
      write_json_atomic(self.workdir / "config.json", config.to_dict())

  def write_summary(self, summary: dict[str, Any]) -> None:
    if self.active:
      write_json_atomic(self.workdir / "summary.json", summary)

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()
      self._tb = None


def write_npz_atomic(path: str | os.PathLike, arrays: dict[str, Any]) -> None:
  """Writes an .npz via a temp file + rename (a killed process never leaves half a file)."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(f".{path.stem}.tmp.npz")  # np.savez appends .npz to other names
  np.savez(tmp, **arrays)
  os.replace(tmp, path)
