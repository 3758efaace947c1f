"""Command-line config handling: `--config experiments/<method>/<name>.py[:arg]` plus overrides.

ml_collections' config_flags reports an unknown override key as a raw AttributeError/KeyError and
a missing config file only when the config is first used. Here every such mistake becomes one
`ConfigError` line that names the full dotted key and its nearest valid key.
"""

import difflib
import importlib.util
import pathlib
import sys

import ml_collections

from jaxml.errors import ConfigError


def split_config_arg(value: str) -> tuple[str, str | None]:
  """'path.py:arg' -> ('path.py', 'arg'); 'path.py' -> ('path.py', None)."""
  path, sep, arg = value.partition(":")
  return path, (arg if sep else None)


def find_config_arg(argv: list[str]) -> str | None:
  for i, a in enumerate(argv):
    if a == "--config" and i + 1 < len(argv):
      return argv[i + 1]
    if a.startswith("--config="):
      return a.split("=", 1)[1]
  return None


def load_module(path: str):
  """Imports an experiment file (a one-line `ConfigError` if it is missing or fails to import)."""
  p = pathlib.Path(path)
  if not p.is_file():
    raise ConfigError(f"config file not found: {path} (expected experiments/<method>/<name>.py)")
  spec = importlib.util.spec_from_file_location(f"_jaxml_config_{p.stem}", p)
  module = importlib.util.module_from_spec(spec)
  try:
    spec.loader.exec_module(module)
  except ConfigError:
    raise
  except Exception as e:  # a broken config file: say which and why, in one line
    raise ConfigError(f"config file {path} failed to import: {type(e).__name__}: {e}") from e
  if not hasattr(module, "get_config"):
    raise ConfigError(f"config file {path} defines no get_config(arg)")
  return module


def load_config_file(value: str) -> ml_collections.ConfigDict:
  """Imports the experiment file and calls `get_config(arg)` with clear errors."""
  path, arg = split_config_arg(value)
  module = load_module(path)
  return module.get_config(arg) if arg is not None else module.get_config()


def all_keys(config: ml_collections.ConfigDict, prefix: str = "") -> list[str]:
  keys = []
  for k, v in config.items():
    full = f"{prefix}{k}"
    keys.append(full)
    if isinstance(v, ml_collections.ConfigDict):
      keys.extend(all_keys(v, full + "."))
  return keys


def check_override_keys(config: ml_collections.ConfigDict, argv: list[str]) -> None:
  """Every `--config.a.b=v` must name an existing key; else name its nearest valid key."""
  valid = all_keys(config)
  for a in argv:
    if not a.startswith("--config."):
      continue
    key = a[len("--config.") :].split("=", 1)[0]
    if key in valid:
      continue
    parent = key.rpartition(".")[0]
    siblings = [k for k in valid if k.rpartition(".")[0] == parent] or valid
    near = difflib.get_close_matches(key, siblings, n=1, cutoff=0.0) or difflib.get_close_matches(
      key, valid, n=1, cutoff=0.0
    )
    hint = f"; nearest valid key: config.{near[0]}" if near else ""
    raise ConfigError(f"unknown config key: config.{key}{hint}")


def parse_flags(argv: list[str]) -> list[str]:
  """Parses absl flags, turning config mistakes into `ConfigError`."""
  from absl import flags

  value = find_config_arg(argv)
  if value is None:
    raise ConfigError("missing --config experiments/<method>/<name>.py[:arg]")
  check_override_keys(load_config_file(value), argv)
  # config_flags reads its overrides from sys.argv (not from the argv given to FLAGS) and defines
  # one `config.<key>` flag per override when parsed. So that `argv` is what gets parsed, also on
  # a second call in one process (tests, notebooks): start from unparsed flags without the
  # override flags of an earlier parse, and show config_flags `argv` as sys.argv.
  fv = flags.FLAGS
  fv.unparse_flags()
  for name in [n for n in fv if n.startswith("config.")]:
    delattr(fv, name)
  saved_argv, sys.argv = sys.argv, list(argv)
  try:
    return fv(argv)
  except flags.Error as e:  # wrong types in overrides, unknown flags
    raise ConfigError(str(e).splitlines()[0]) from None
  except (AttributeError, KeyError) as e:
    raise ConfigError(f"bad config override: {e}") from None
  finally:
    sys.argv = saved_argv


def fail(error: ConfigError | Exception, code: int) -> None:
  """One line on stderr (on a line of its own when a progress bar is drawn), then exit."""
  from tqdm import tqdm

  tqdm.write(f"jaxml: error: {error}", file=sys.stderr)
  sys.stderr.flush()
  sys.exit(code)
