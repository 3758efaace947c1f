"""Entry point: `python -m jaxml.main --config experiments/<method>/<name>.py[:arg] --workdir DIR`.

Loads the (locked) ml_collections config, validates it, and dispatches on `config.method` to
`jaxml/methods/<method>.py:run(config, workdir)`. Re-running the same command on the same workdir
resumes the run. Config mistakes end in one line on stderr and exit code 2; missing or corrupt data
and checkpoints end likewise with their own exit codes (see jaxml/errors.py).
"""

import importlib
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from jaxml import config_cli
from jaxml.errors import ConfigError, JaxmlError

METHODS = ("train", "ohl", "amlfs", "tabular")

_CONFIG = config_flags.DEFINE_config_file(
  "config", None, "Experiment config: experiments/<method>/<name>.py[:arg].", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (created; resumed if it exists).")


def get_method(name: str):
  """Imports `jaxml.methods.<name>`; an unknown name is a config error."""
  if name not in METHODS:
    raise ConfigError(f"unknown method {name!r}; valid methods: {', '.join(METHODS)}")
  return importlib.import_module(f"jaxml.methods.{name}")


def run_experiment(config, workdir: str) -> dict:
  """Validates `config` and runs its method; returns the method's summary dict."""
  if "method" not in config:
    raise ConfigError("config has no 'method' field")
  method = get_method(config.method)
  method.validate_config(config)
  return method.run(config, workdir)


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
  try:
    run_experiment(_CONFIG.value, _WORKDIR.value)
  except JaxmlError as e:
    logging.flush()
    config_cli.fail(e, e.exit_code)


def _flags_parser(argv):
  try:
    return config_cli.parse_flags(argv)
  except ConfigError as e:
    config_cli.fail(e, e.exit_code)


if __name__ == "__main__":
  app.run(main, flags_parser=_flags_parser)
  sys.exit(0)
