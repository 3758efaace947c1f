"""The method registry: `config.method` -> the module that runs it.

A method is a module (or a package whose `__init__` re-exports these) with
`validate_config(config)` (raises `ConfigError` before anything is written) and
`run(config, workdir) -> summary dict`, which builds a `PopulationRun`, a `Controller` and calls
`jaxml.trunks.run_trunks`. One-file recipes stay single modules (train, ohl, amlfs, tabular);
methods with more than one file are packages with the same inner names (`configs.py`: the config
block, `experiment()` and `validate_config`; `report.py`: summary and plots; `controller.py`).
Adding a method: write the module, add its name here.
"""

import importlib
from types import ModuleType

from jaxml.errors import ConfigError

METHODS = (
  "train",
  "ohl",
  "amlfs",
  "tabular",
  "econas_search",
  "darts",
  "proxy_study",
  "crnas",
  "pcnas",
  "spos",
)


def get_method(name: str) -> ModuleType:
  """Imports `jaxml.methods.<name>`; an unknown name is a config error."""
  if name not in METHODS:
    raise ConfigError(f"unknown method {name!r}; valid methods: {', '.join(METHODS)}")
  return importlib.import_module(f"jaxml.methods.{name}")
