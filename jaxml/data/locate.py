"""Where jaxml looks for data sets on disk.

An explicit directory (usually `config.data.dir`) is the only place searched when given: data the
user names is used or refused with an error naming it, never replaced by a copy found elsewhere.
Without one, the search order (first hit wins), shared by every data set the package reads, is:

1. `$JAXML_DATA_DIR`;
2. `../shared/data` next to the repository root (the layout of the project's machines);
3. for CIFAR-10 only (`jaxml.data.cifar10`): the download folder `$JAXML_CACHE_DIR/data`
   (default `~/.cache/jaxml/data`), where `python -m jaxml.data.fetch cifar10` puts it, then TFDS.

docs/data.md describes the formats, this order and the opt-in download.
"""

import os
import pathlib

from jaxml.errors import DataError

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
ENV_VAR = "JAXML_DATA_DIR"


def candidate_roots(explicit_dir: str | None = None) -> list[pathlib.Path]:
  """Data roots in search order (they may not exist): the explicit directory alone if given."""
  if explicit_dir:
    return [pathlib.Path(explicit_dir).expanduser()]
  roots = []
  if os.environ.get(ENV_VAR):
    roots.append(pathlib.Path(os.environ[ENV_VAR]).expanduser())
  roots.append(REPO_ROOT.parent / "shared" / "data")
  return roots


def find_dataset_dir(
  name: str, required_files: tuple[str, ...], explicit_dir: str | None = None
) -> pathlib.Path | None:
  """Returns the first `<root>/<name>` (or `<root>` itself) holding all `required_files`.

  An explicit directory may point either at the data root or at the data set folder itself.
  """
  for root in candidate_roots(explicit_dir):
    for d in (root / name, root):
      if all((d / f).exists() for f in required_files):
        return d
  return None


def searched_places(name: str, explicit_dir: str | None = None) -> str:
  """Human-readable list of the places searched, for error messages."""
  return ", ".join(str(r / name) for r in candidate_roots(explicit_dir))


def require_dataset_dir(
  name: str, required_files: tuple[str, ...], explicit_dir: str | None = None, hint: str = ""
) -> pathlib.Path:
  """Like `find_dataset_dir` but raises a `DataError` naming every place searched."""
  found = find_dataset_dir(name, required_files, explicit_dir)
  if found is None:
    raise DataError(
      f"{name} data not found: looked for {', '.join(required_files)} in "
      f"{searched_places(name, explicit_dir)}. Set config.data.dir or ${ENV_VAR} to a folder "
      f"holding {name}/. {hint}".strip()
    )
  return found


def download_root() -> pathlib.Path:
  """Where a download goes without an explicit dir, searched after `../shared/data`:
  `$JAXML_DATA_DIR` if set, else `$JAXML_CACHE_DIR/data` (default `~/.cache/jaxml/data`)."""
  if os.environ.get(ENV_VAR):
    return pathlib.Path(os.environ[ENV_VAR]).expanduser()
  return default_cache_dir() / "data"


def default_cache_dir() -> pathlib.Path:
  """Cache for decoded arrays: $JAXML_CACHE_DIR, else ~/.cache/jaxml."""
  return pathlib.Path(os.environ.get("JAXML_CACHE_DIR", "~/.cache/jaxml")).expanduser()
