"""What a run directory says about the run in it, read before a run starts and told after it ends.

`jaxml.main` asks three things of a `--workdir` before the method runs, so that nothing is
written when the answer is no:

- does it hold a run with another config? (`check_same_config`): resuming it would mix two
  experiments in one checkpoint, metrics file and summary, so it is refused with one line naming
  the differing keys. Keys that cannot change a result (`configs.RESULT_NEUTRAL_KEYS`: progress
  bar, log and checkpoint frequency, where the data lies) may differ.
- is that run finished? (`finished_summary`): then the run is not repeated (a second final
  evaluation would append a second final row to metrics.jsonl); its result is printed.
- and after a run (or its stop): `record_config` leaves a config.json at the top of the run
  directory for the next start to compare with; `result_lines`, the headline result and where
  its outputs are.
"""

import json
import pathlib

from jaxml import configs
from jaxml.errors import ConfigError

FINISHED_KEY = "finished"  # set in summary.json by jaxml.main once the method has returned

# The headline of each kind of summary, first found wins: (key, label).
HEADLINES = (
  ("test_accuracy", "test accuracy"),
  ("final_true_accuracy_mean", "found cells' NB201 test accuracy (mean over copies)"),
  ("found_true_accuracy", "found cell's NB201 test accuracy"),
  ("best_true_accuracy", "best cell's NB201 test accuracy"),
  ("returned_true_accuracy", "returned cell's NB201 test accuracy"),
  ("val_accuracy", "val accuracy"),
)


def flatten(config: dict, prefix: str = "") -> dict:
  """{'optim': {'lr': 0.1}} -> {'optim.lr': 0.1} (lists stay values)."""
  out = {}
  for k, v in config.items():
    if isinstance(v, dict) and v:
      out.update(flatten(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out


def _has_checkpoint(workdir: pathlib.Path) -> bool:
  return any(p.is_dir() and any(p.iterdir()) for p in workdir.rglob("checkpoints"))


def _read(path: pathlib.Path) -> dict | None:
  try:
    return json.loads(path.read_text())
  except (OSError, ValueError):
    return None


def check_same_config(config, workdir: str) -> None:
  """`ConfigError` when `workdir` holds a run (a checkpoint or a finished summary) whose
  config.json differs from `config` in a key that can change the result."""
  root = pathlib.Path(workdir).expanduser()
  saved = _read(root / "config.json")
  if saved is None or not (_has_checkpoint(root) or finished_summary(workdir) is not None):
    return
  # Through JSON both ways, so tuples and lists (and ints and floats) compare as saved.
  new = flatten(json.loads(json.dumps(config.to_dict(), default=str)))
  old = flatten(saved)
  differ = [
    k
    for k in sorted(set(new) | set(old))
    if k not in configs.RESULT_NEUTRAL_KEYS and new.get(k, "<unset>") != old.get(k, "<unset>")
  ]
  if differ:
    shown = ", ".join(
      f"{k} ({old.get(k, '<unset>')!r} -> {new.get(k, '<unset>')!r})" for k in differ[:6]
    )
    more = f" and {len(differ) - 6} more" if len(differ) > 6 else ""
    raise ConfigError(
      f"--workdir {workdir} holds a run with another config: {shown}{more}; resume it with its "
      "own config (its config.json) or start the new one in a new --workdir"
    )


def record_config(config, workdir: str) -> None:
  """Writes the run's config.json at the top of `workdir` once the run holds a checkpoint, when
  the method wrote none there (CRNAS keeps its runs in sub-directories): the next start compares
  against it. A run that could not start holds no checkpoint and gets no file."""
  from jaxml.metrics.writers import write_json_atomic

  root = pathlib.Path(workdir).expanduser()
  if root.is_dir() and not (root / "config.json").exists() and _has_checkpoint(root):
    write_json_atomic(root / "config.json", config.to_dict())


def finished_summary(workdir: str) -> dict | None:
  """The summary of a finished run in `workdir`, or None."""
  summary = _read(pathlib.Path(workdir).expanduser() / "summary.json")
  return summary if isinstance(summary, dict) and summary.get(FINISHED_KEY) else None


def mark_finished(workdir: str, summary: dict) -> dict:
  """Writes summary.json with the finished mark (the method has written it without)."""
  from jaxml.metrics.writers import write_json_atomic

  summary = {**summary, FINISHED_KEY: True}
  write_json_atomic(pathlib.Path(workdir).expanduser() / "summary.json", summary)
  return summary


def _number(v) -> str:
  return f"{v:.4f}" if isinstance(v, float) else str(v)


def result_lines(summary: dict, workdir: str) -> list[str]:
  """What a person reads at the end: the headline result, wall time and where the outputs are."""
  from jaxml.experiment import human_duration

  root = pathlib.Path(workdir).expanduser()
  lines = []
  for key, label in HEADLINES:
    if summary.get(key) is not None:
      value = summary[key]
      std = summary.get(f"{key.removesuffix('_mean')}_std")
      spread = f" +- {std:.4f}" if isinstance(std, float) and key.endswith("_mean") else ""
      lines.append(f"{label}: {_number(value)}{spread}")
      break
  for key in ("best_architecture", "found_architecture", "final_derived"):
    if summary.get(key):
      lines.append(f"{key.replace('_', ' ')}: {summary[key]}")
      break
  if isinstance(summary.get("wall_time_s"), (int, float)):
    lines.append(f"wall time: {human_duration(float(summary['wall_time_s']))}")
  lines.append(f"summary: {root / 'summary.json'}")
  if (root / "plots").is_dir():
    lines.append(f"plots: {root / 'plots'}/")
  tensorboard = [p.parent for p in sorted(root.rglob("events.out.tfevents.*"))]
  if tensorboard:
    lines.append(f"TensorBoard: tensorboard --logdir {root}")
  return lines
