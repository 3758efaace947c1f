"""One table of several runs: method, the config keys they differ in, accuracy, wall time, speed.

  python -m jaxml.compare runs/a runs/b [runs/c ...] [--markdown OUT.md] [--keys optim.lr,seed]

Each RUN_DIR is the `--workdir` of a `python -m jaxml.main` run: its `config.json` (written when
the run starts) and, once it has finished, its `summary.json`. A run without a summary yet
(running, stopped, or ended by an error) is listed as `unfinished` with what its `metrics.jsonl`
shows so far (steps, best val). The table goes to stdout; `--markdown OUT.md` also writes it as
a GitHub markdown table headed by the command line and the date (the rows of RESULTS.md).

Columns: run (the directory name; the path as given where two names clash), status, method, K
(copies), one column per config key in which the runs differ (dotted, e.g. `optim.lr`; `--keys`
adds keys shown even where equal), steps, test acc and val acc (final; the mean over the K copies
± their std when K > 1 and the summary keeps every copy's accuracy; after a final best-copy
broadcast, as in OHL and AM-LFS, the one shared model), best val (the highest val accuracy of any
copy at any evaluation in metrics.jsonl: what early stopping on val could have kept), wall s
(the whole run over all sessions), img/s (training images per second of training-step time,
all copies), device, and notes where a run has extra results (the tabular method's searches:
mean ± std test % over seeds). '-' marks a value a run does not have.

Config differences: `config.json` is flattened to dotted keys. A key is shown when two runs that
have it hold different values; a key only some runs have (a method's own section, e.g. `ohl.*`)
with one value among those is not (the method column tells). `method` and `population.size`
have their own columns. Keys that do not change results are left out unless named in `--keys`:
where the data is read from and cached (`data.dir`, `data.cache_dir`: the same data may live in
different places; `summary.json`'s `data_source` says what was read), logging, progress bars and
checkpoint frequency (`IGNORED_KEYS`).

A path that is not a run directory (no config.json) or an unreadable JSON file ends with one line
on stderr and exit code 2, before anything is written.
"""

import argparse
import datetime
import difflib
import json
import pathlib
import shlex
import sys
from typing import Any

from jaxml import config_cli
from jaxml.configs import RESULT_NEUTRAL_KEYS
from jaxml.errors import ConfigError
from jaxml.metrics.writers import read_jsonl
from jaxml.rundir import flatten

IGNORED_KEYS = RESULT_NEUTRAL_KEYS
OWN_COLUMNS = ("method", "population.size")  # shown as the method and K columns
MISSING = "-"
NOTE = (
  "test acc, val acc: final; mean over the K copies ± std over copies when K > 1 (one shared "
  "model after a final broadcast). best val: highest val accuracy of any copy at any evaluation "
  "(metrics.jsonl). wall s: whole run; img/s: training images/s of training-step time, all "
  "copies. unfinished: no summary.json yet (running, stopped or failed)."
)


def _read_json(path: pathlib.Path) -> dict:
  try:
    data = json.loads(path.read_text())
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
    raise ConfigError(f"cannot read {path}: {e}") from None
  if not isinstance(data, dict):
    raise ConfigError(f"{path} does not hold a JSON object")
  return data


def load_run(path: str | pathlib.Path) -> dict:
  """{'path', 'config' (dict), 'summary' (dict or None), 'metrics' (rows)} of a run directory."""
  p = pathlib.Path(path)
  if not (p / "config.json").is_file():
    if not p.is_dir():
      why = "does not exist" if not p.exists() else "is not a directory"
      raise ConfigError(f"{path} {why}; expected a run directory (the --workdir of a run)")
    inner = sorted(c.name for c in p.iterdir() if (c / "config.json").is_file())
    hint = f"; it holds {len(inner)} run directories: pass them, e.g. {path}/*" if inner else ""
    raise ConfigError(f"{path} is not a run directory (no config.json){hint}")
  summary_path = p / "summary.json"
  return {
    "path": p,
    "config": _read_json(p / "config.json"),
    "summary": _read_json(summary_path) if summary_path.exists() else None,
    "metrics": read_jsonl(p / "metrics.jsonl"),
  }


def differing_keys(flat_configs: list[dict]) -> list[str]:
  """Keys two runs that have them disagree on; `seed` first, then alphabetical."""
  keys = sorted(set().union(*flat_configs), key=lambda k: (k != "seed", k))
  out = []
  for k in keys:
    if k in IGNORED_KEYS or k in OWN_COLUMNS:
      continue
    values = {json.dumps(c[k], sort_keys=True) for c in flat_configs if k in c}
    if len(values) > 1:
      out.append(k)
  return out


def check_keys(keys: list[str], flat_configs: list[dict]) -> None:
  """Every `--keys` entry is in at least one run's config; else name the nearest key."""
  known = sorted(set().union(*flat_configs))
  for k in keys:
    if k not in known:
      near = difflib.get_close_matches(k, known, n=1, cutoff=0.0)
      hint = f"; nearest: {near[0]}" if near else ""
      raise ConfigError(f"--keys: no run's config.json has the key {k!r}{hint}")


def format_value(value: Any) -> str:
  """A config value as on the command line: 0.05, True, (91.0, 136.5), resnet20."""
  if isinstance(value, list):
    return "(" + ", ".join(format_value(v) for v in value) + ("," if len(value) == 1 else "") + ")"
  if isinstance(value, dict):  # an empty section
    return "{}"
  if isinstance(value, str):
    return value if value else '""'
  return repr(value)


def _number(value, spec: str) -> str:
  if isinstance(value, bool) or not isinstance(value, int | float):
    return MISSING
  return format(value, spec)


def accuracy(summary: dict | None, split: str) -> str:
  """'0.3085', or '0.1300 ± 0.0700' for the mean of K > 1 copies; '-' where absent."""
  if not summary:
    return MISSING
  mean = _number(summary.get(f"{split}_accuracy"), ".4f")
  per_copy = summary.get(f"{split}_accuracy_per_copy")
  std = summary.get(f"{split}_accuracy_std")
  if mean != MISSING and isinstance(per_copy, list) and len(per_copy) > 1:
    if _number(std, ".4f") != MISSING:
      return f"{mean} ± {std:.4f}"
  return mean


def best_val(metrics: list[dict]) -> str:
  """The highest val accuracy (of the best copy, for populations) of any logged evaluation."""
  vals = [r.get("val_accuracy_best", r.get("val_accuracy")) for r in metrics]
  vals = [v for v in vals if isinstance(v, int | float) and v == v]  # drop NaN
  return f"{max(vals):.4f}" if vals else MISSING


def steps(run: dict) -> str:
  """Steps trained: the summary's, or for an unfinished run the last logged training step."""
  if run["summary"] is not None:
    return _number(run["summary"].get("steps"), "d")
  trained = [r["step"] for r in run["metrics"] if "train_loss" in r and "step" in r]
  return str(max(trained)) if trained else MISSING


def notes(summary: dict | None) -> str:
  """Results a summary holds beyond the common columns (the tabular method's searches, an EcoNAS
  search's answer)."""
  if summary and summary.get("method") == "econas_search":
    return econas_notes(summary)
  if not summary or summary.get("method") != "tabular":
    return ""
  parts = []
  for name in summary.get("methods", []):
    entry = summary.get(name, {})
    mean, std = entry.get("mean_test"), entry.get("std_test")
    if isinstance(mean, int | float) and isinstance(std, int | float):
      parts.append(f"{name} {mean:.2f} ± {std:.2f}")
  if not parts:
    return ""
  seeds, queries = summary.get("num_seeds"), summary.get("queries")
  what = f"{summary.get('dataset', '?')} test %, {seeds} seeds x {queries} queries"
  return f"{', '.join(parts)} ({what})"


def econas_notes(summary: dict) -> str:
  """An EcoNAS search's answer: the found cell, its NB201 accuracy (when the table was there), its
  proxy val accuracy and stage, and the search's trainings."""
  gt = summary.get("found_test_accuracy_nb201")
  val = summary.get("found_val_accuracy")
  parts = [f"found {summary.get('found_architecture', '?')}"]
  if isinstance(gt, int | float):
    parts.append(f"NB201 {gt:.2f} %")
  if isinstance(val, int | float):
    parts.append(f"val {val:.3f} at stage {summary.get('found_stage', '?')}")
  parts.append(
    f"{summary.get('trainings', '?')} trainings of {summary.get('networks_trained', '?')} "
    f"networks ({summary.get('children', '?')} children)"
  )
  return ", ".join(parts)


def labels(runs: list[dict], given: list[str]) -> list[str]:
  names = [r["path"].resolve().name or str(r["path"]) for r in runs]
  return [n if names.count(n) == 1 else g for n, g in zip(names, given)]


def build_table(paths: list[str], keys: list[str] | None = None) -> tuple[list[str], list[list]]:
  """(header, rows) for the runs in `paths`; `keys` are config keys always shown."""
  runs = [load_run(p) for p in paths]
  flat = [flatten(r["config"]) for r in runs]
  keys = list(keys or [])
  check_keys(keys, flat)
  shown = keys + [k for k in differing_keys(flat) if k not in keys]
  has_notes = any(notes(r["summary"]) for r in runs)
  header = ["run", "status", "method", "K", *shown, "steps", "test acc", "val acc", "best val"]
  header += ["wall s", "img/s", "device"] + (["notes"] if has_notes else [])
  rows = []
  for label, run, cfg in zip(labels(runs, paths), runs, flat):
    s = run["summary"]
    k = (s or {}).get("population_size", cfg.get("population.size"))
    row = [label, "finished" if s is not None else "unfinished", cfg.get("method", MISSING)]
    row.append(_number(k, "d"))
    row += [format_value(cfg[key]) if key in cfg else MISSING for key in shown]
    row += [steps(run), accuracy(s, "test"), accuracy(s, "val"), best_val(run["metrics"])]
    row.append(_number((s or {}).get("wall_time_s"), ",.1f"))
    row.append(_number((s or {}).get("images_per_s"), ",.0f"))
    row.append(str((s or {}).get("device", MISSING)))
    if has_notes:
      row.append(notes(s) or MISSING)
    rows.append([str(c) for c in row])
  return header, rows


def plain_table(header: list[str], rows: list[list[str]]) -> str:
  widths = [max(len(x) for x in col) for col in zip(header, *rows)]
  lines = [header, ["-" * w for w in widths], *rows]
  return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines)


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
  esc = lambda c: c.replace("|", "\\|")
  lines = ["| " + " | ".join(esc(c) for c in header) + " |"]
  lines.append("| " + " | ".join("---" for _ in header) + " |")
  lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
  return "\n".join(lines)


def markdown_document(header, rows, command: str, date: str) -> str:
  return f"Runs compared by `{command}` on {date}.\n\n{markdown_table(header, rows)}\n\n{NOTE}\n"


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(
    prog="python -m jaxml.compare", description=__doc__.splitlines()[0]
  )
  parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories (--workdir)")
  parser.add_argument("--markdown", metavar="OUT.md", help="also write a GitHub markdown table")
  parser.add_argument(
    "--keys", default="", help="comma-separated config keys to show even where equal (a.b,c.d)"
  )
  args = parser.parse_args(argv)
  keys = [k.strip() for k in args.keys.split(",") if k.strip()]
  try:
    header, rows = build_table(args.runs, keys)
  except ConfigError as e:
    config_cli.fail(e, e.exit_code)
  print(plain_table(header, rows))
  print(f"\n{NOTE}")
  if args.markdown:
    given = sys.argv[1:] if argv is None else argv
    command = "python -m jaxml.compare " + shlex.join(given)
    text = markdown_document(header, rows, command, datetime.date.today().isoformat())
    try:
      pathlib.Path(args.markdown).write_text(text)
    except OSError as e:
      config_cli.fail(ConfigError(f"--markdown {args.markdown}: cannot write: {e}"), 2)
    print(f"wrote {args.markdown}", file=sys.stderr)


if __name__ == "__main__":
  main()
