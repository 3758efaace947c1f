"""Validators of `config.model` fields, shared by the model families' builders.

Each turns an impossible value into a `ConfigError` (exit 2, docs/errors.md) that names the field
and the `config.model.<field>` to set, so a bad config fails before any tracing.
"""

import numbers
from typing import Any

from jaxml.errors import ConfigError
from jaxml.models.layers import STEMS


def int_field(name: str, field: str, value: Any, minimum: int) -> int:
  """An integer >= `minimum` (bools refused: True would pass as 1)."""
  if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
    raise ConfigError(
      f"Model {name!r}: {field} must be an integer >= {minimum}, got {value!r}. "
      f"Set config.model.{field}."
    )
  return int(value)


def stem_field(name: str, value: Any) -> str:
  if value not in STEMS:
    raise ConfigError(
      f"Model {name!r}: stem must be one of {', '.join(STEMS)}, got {value!r}. "
      "Set config.model.stem."
    )
  return value


def bool_field(name: str, field: str, value: Any) -> bool:
  if not isinstance(value, bool):
    raise ConfigError(
      f"Model {name!r}: {field} must be True or False, got {value!r}. Set config.model.{field}."
    )
  return value


def counts_field(name: str, field: str, value: Any, length: int) -> tuple[int, ...]:
  """A tuple of `length` integers >= 1 (blocks per stage)."""
  ok = isinstance(value, tuple | list) and len(value) == length
  ok = ok and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value)
  if not ok or min(value) < 1:
    raise ConfigError(
      f"Model {name!r}: {field} must be {length} integers >= 1, got {value!r}. "
      f"Set config.model.{field}."
    )
  return tuple(int(v) for v in value)


def depth_field(name: str, value: Any, offset: int) -> int:
  """Depth of the form 6n + offset with n >= 1 (offset 2: CIFAR ResNet, offset 4: WRN)."""
  depth = int_field(name, "depth", value, 1)
  if depth < 6 + offset or (depth - offset) % 6:
    valid = ", ".join(str(6 * n + offset) for n in (1, 2, 3, 4, 5, 6, 9, 18))
    raise ConfigError(
      f"Model {name!r}: depth must be 6n+{offset} with n >= 1 (e.g. {valid}, ...), got {depth}. "
      "Set config.model.depth to such a value."
    )
  return depth
