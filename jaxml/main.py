"""Entry point: `python -m jaxml.main --config experiments/<method>/<name>.py[:arg] --workdir DIR`.

Loads the (locked) ml_collections config, validates it, and dispatches on `config.method` to
`run(config, workdir)` of the method registered in `jaxml/methods/__init__.py`. Re-running the
same command on the same workdir resumes the run. Config mistakes end in one line on stderr and
exit code 2; missing or corrupt data and checkpoints end likewise with their own exit codes
(see jaxml/errors.py).
"""

import ast
import importlib
import importlib.util
import pathlib
import shutil
import sys

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from jaxml import config_cli, configs, preemption, rundir
from jaxml.errors import ConfigError, JaxmlError, OutOfMemoryError
from jaxml.experiment import EtaEstimate, say
from jaxml.methods import METHODS, get_method

_CONFIG = config_flags.DEFINE_config_file(
  "config", None, "Experiment config: experiments/<method>/<name>.py[:arg].", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (created; resumed if it exists).")


def run_experiment(config, workdir: str) -> dict:
  """Validates `config` and runs its method; returns the method's summary dict."""
  if "method" not in config:
    raise ConfigError("config has no 'method' field")
  method = get_method(config.method)
  configs.check_finite(config)
  method.validate_config(config)
  check_workdir(workdir)
  rundir.check_same_config(config, workdir)
  done = rundir.finished_summary(workdir)
  if done is not None:  # nothing to do, nothing written
    say(f"{workdir} holds a finished run (use a new --workdir to train again)")
    return done
  fresh = not pathlib.Path(workdir).expanduser().exists()
  try:
    summary = method.run(config, workdir)
  except jax.errors.JaxRuntimeError as e:
    if "RESOURCE_EXHAUSTED" not in str(e):
      raise
    removed = fresh and _remove_if_no_checkpoint(workdir)
    raise OutOfMemoryError(
      f"out of device memory ({str(e).splitlines()[0][:160]}): reduce population.size, "
      f"batch_size, data.resolution or the model's width"
      + (f"; removed the new workdir {workdir}" if removed else "")
    ) from None
  finally:
    rundir.record_config(config, workdir)
  return rundir.mark_finished(workdir, summary)


def _remove_if_no_checkpoint(workdir: str) -> bool:
  """Removes a workdir this run created when it holds no checkpoint: nothing to resume."""
  path = pathlib.Path(workdir).expanduser()
  if any(path.glob("checkpoints/*")):
    return False
  shutil.rmtree(path, ignore_errors=True)
  return True


def check_workdir(workdir: str) -> None:
  """A workdir is a directory (created by the run) or a path that does not exist yet."""
  path = pathlib.Path(workdir).expanduser()
  for p in (path, *path.parents):
    if p.exists() and not p.is_dir():
      what = "--workdir" if p == path else f"--workdir {workdir}: its parent"
      raise ConfigError(f"{what} {p} exists and is not a directory")


def main(argv):
  if len(argv) > 1:  # a config mistake like the others: one line, not absl's usage page
    config_cli.fail(
      ConfigError(
        f"unexpected arguments {argv[1:]}; only --config, --workdir and "
        "--config.<key>=<value> overrides are accepted"
      ),
      2,
    )
  if not flags.FLAGS["verbosity"].present:  # orbax logs every save at INFO
    logging.set_verbosity(logging.WARNING)
  if not _WORKDIR.value:
    config_cli.fail(ConfigError("missing --workdir DIR"), 2)
  config_arg = config_cli.find_config_arg(sys.argv)
  EtaEstimate.config_path = config_cli.split_config_arg(config_arg)[0] if config_arg else None
  try:
    summary = run_experiment(_CONFIG.value, _WORKDIR.value)
    for line in rundir.result_lines(summary, _WORKDIR.value):
      say(line)
  except KeyboardInterrupt as e:  # a second stop signal: out at once, the last checkpoint kept
    print(
      f"\njaxml: {e or 'interrupted'}; the last checkpoint in {_WORKDIR.value} is kept",
      file=sys.stderr,
    )
    sys.exit(130)
  except preemption.Preempted as e:  # not an error: the run is saved and resumable
    logging.flush()
    say(str(e))  # on its own line, below the progress bar
    sys.exit(e.exit_code)
  except JaxmlError as e:
    logging.flush()
    config_cli.fail(e, e.exit_code)


HELP_FLAGS = ("-h", "--help", "-?", "--helpshort", "--helpfull")
EXPERIMENTS_DIR = pathlib.Path(__file__).resolve().parents[1] / "experiments"


def _variants(module: ast.Module, path: pathlib.Path) -> str:
  """An experiment file's `VARIANTS`: a literal or `<method>.VARIANTS` is read without running
  the file; any other expression by importing it."""
  for node in module.body:
    names = [getattr(t, "id", "") for t in getattr(node, "targets", [])]
    if isinstance(node, ast.Assign) and "VARIANTS" in names:
      if isinstance(node.value, ast.Attribute) and isinstance(node.value.value, ast.Name):
        return ", ".join(getattr(get_method(node.value.value.id), node.value.attr))
      try:
        return ", ".join(ast.literal_eval(node.value)) or "-"
      except ValueError:
        spec = importlib.util.spec_from_file_location(path.stem, path)
        experiment = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(experiment)
        return ", ".join(experiment.VARIANTS) or "-"
  return "?"


def usage() -> str:
  """The `--help` text: flags, override syntax, methods, experiment files and their variants."""
  lines = [
    "usage: python -m jaxml.main --config experiments/<method>/<name>.py[:variant,...] "
    "--workdir DIR [--config.<key>=<value> ...]",
    "",
    "  --config FILE[:ARGS]  experiment file; ARGS = comma-separated variants (below)",
    "  --workdir DIR         run directory: created if missing; the same command on the same",
    "                        DIR resumes the run from its last checkpoint",
    "  --config.<key>=<v>    override any config field, e.g. --config.optim.lr=0.05",
    "                        --config.population.size=4 --config.data.dir=/data",
    "",
    f"methods: {', '.join(METHODS)} (jaxml/methods/)",
    "exit codes: 0 done, 2 config error, 3 data error, 4 checkpoint error, 5 every copy "
    "diverged, 6 out of device memory, 128 + signal stopped and saved (docs/errors.md)",
    "",
    "experiment files [variants] - first docstring line:",
  ]
  for path in sorted(EXPERIMENTS_DIR.rglob("*.py")):
    module = ast.parse(path.read_text())
    doc = (ast.get_docstring(module) or "").splitlines()
    lines.append(f"  {path.relative_to(EXPERIMENTS_DIR.parent)} [{_variants(module, path)}]")
    lines.append(f"      {doc[0] if doc else ''}")
  return "\n".join(lines)


def _flags_parser(argv):
  if any(a in HELP_FLAGS for a in argv[1:]):
    print(usage())
    sys.exit(0)
  try:
    return config_cli.parse_flags(argv)
  except ConfigError as e:
    config_cli.fail(e, e.exit_code)


if __name__ == "__main__":
  app.run(main, flags_parser=_flags_parser)
  sys.exit(0)
