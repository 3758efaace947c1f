"""Probe a method's config validation with bad values, field by field.

  python tools/probe_config.py experiments/ohl/cifar10_resnet18.py:smoke [more files...]

Every numeric, string and tuple field of each experiment file is set, one at a time, to values a
user could mistype (negative, zero, huge, NaN, inf, an unknown name, an empty or reversed tuple),
and the config is validated as `jaxml.main` would (`configs.check_finite` + the method's
`validate_config`). Prints one line per value that is ACCEPTED (judge it: 0 often means "off")
or that CRASHES validation with something other than a `JaxmlError` (always a bug: the user would
see a traceback). Refused values print nothing. Exit code 1 if anything crashed.

Data-dependent checks (batch vs split sizes, trunks vs run length) happen when a run starts, not
here; `tests/methods/` test those.
"""

import argparse
import math
import sys

import ml_collections

from jaxml import config_cli, configs
from jaxml.errors import JaxmlError
from jaxml.methods import get_method


def leaves(config: ml_collections.ConfigDict, prefix: str = ""):
  """(dotted name, value) of every non-dict field."""
  for key, value in config.items():
    if isinstance(value, ml_collections.ConfigDict):
      yield from leaves(value, f"{prefix}{key}.")
    else:
      yield f"{prefix}{key}", value


def bad_values(value) -> list:
  """Values a user could type into a field of `value`'s type."""
  if isinstance(value, bool):
    return []
  if isinstance(value, int):
    return [-1, 0, 10**9]
  if isinstance(value, float):
    return [-1.0, 0.0, math.nan, math.inf, 1e9]
  if isinstance(value, str):
    return ["nosuch"]
  if isinstance(value, tuple):
    return [(), (-1.0,), tuple(reversed(value)) if len(value) > 1 else (1e9,)]
  return []


def probe(path: str) -> list[tuple[str, object, str]]:
  """(field, value, 'ACCEPTED' | 'CRASH ...') for every bad value not refused with a
  JaxmlError."""
  found = []
  for name, value in leaves(config_cli.load_config_file(path)):
    for bad in bad_values(value):
      config = config_cli.load_config_file(path)
      *parents, leaf = name.split(".")
      node = config
      for p in parents:
        node = node[p]
      try:
        with config.unlocked():
          node[leaf] = bad
      except (TypeError, ValueError):  # ml_collections' type check: a CLI override fails alike
        continue
      try:
        configs.check_finite(config)
        get_method(config.method).validate_config(config)
        found.append((name, bad, "ACCEPTED"))
      except JaxmlError:
        pass
      except Exception as e:  # noqa: BLE001 - exactly what this tool looks for
        found.append((name, bad, f"CRASH {type(e).__name__}: {str(e)[:100]}"))
  return found


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("configs", nargs="+", help="experiments/<method>/<name>.py[:variants]")
  args = parser.parse_args(argv)
  crashed = False
  for path in args.configs:
    for name, bad, status in probe(path):
      print(f"{path}  {name}={bad!r}: {status}")
      crashed |= status.startswith("CRASH")
  return int(crashed)


if __name__ == "__main__":
  sys.exit(main())
