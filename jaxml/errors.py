"""Errors a person can act on.

Every error that reaches `jaxml.main` as a `JaxmlError` is printed as one line (no traceback)
and ends the process with `exit_code`. Raise these for bad input: config mistakes, missing or
corrupt data, corrupt checkpoints. Programming errors stay ordinary Python exceptions.
"""


class JaxmlError(Exception):
  """Base class: a problem with the user's input, reported as one clear line."""

  exit_code = 1


class ConfigError(JaxmlError):
  """An unknown key, a wrong type, or an impossible value in the experiment config."""

  exit_code = 2


class DataError(JaxmlError):
  """Data that is missing, truncated, corrupt, or in an unknown format."""

  exit_code = 3


class CheckpointError(JaxmlError):
  """A checkpoint that cannot be restored (corrupt, partial, or of another run)."""

  exit_code = 4


class DivergedError(JaxmlError):
  """Every copy of a population has a non-finite val loss or accuracy: training on would only
  train on NaNs. The last good checkpoint is kept; change the config (e.g. a lower lr)."""

  exit_code = 5


class OutOfMemoryError(JaxmlError):
  """The device ran out of memory (XLA's RESOURCE_EXHAUSTED): the population, batch, resolution
  or model is too large for it. A fresh workdir with no checkpoint yet is removed."""

  exit_code = 6
