"""Opt-in download of CIFAR-10 for machines with internet access.

`python -m jaxml.data.fetch cifar10 [--dir DIR]`, or `--config.data.download=True` on a run that
finds no CIFAR-10, fetches the canonical python archive (`CIFAR10_URL`, 163 MiB), checks its
published MD5, and extracts `cifar-10-batches-py/` into the data root: `DIR` /
`config.data.dir` when given, else `jaxml.data.locate.download_root()` (`$JAXML_DATA_DIR` if
set, else `$JAXML_CACHE_DIR/data`, default `~/.cache/jaxml/data`), which the loader searches.
Nothing runs over the network unless asked for.

Every network step has a `timeout` (default 10 s): name resolution, connecting, and each read,
so a machine without internet gets one clear `DataError` within seconds instead of a hang.
Nothing partial is ever left where the loader looks: the archive is streamed to a hidden
temporary file in the root, checked, extracted into a hidden temporary directory (members with
absolute paths, `..`, links or devices are refused), and the finished folder is renamed into
place; on any failure the temporary files, and any directories the fetch created, are removed.
Formats, search order and the cache are described in docs/data.md.
"""

import argparse
import hashlib
import http.client
import logging
import os
import pathlib
import shutil
import socket
import sys
import tarfile
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
import zlib

from jaxml.data import cifar10, locate
from jaxml.errors import DataError

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
# Published on https://www.cs.toronto.edu/~kriz/cifar.html next to the download link.
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
# Seconds allowed for name resolution, for connecting, and for each read of the download.
TIMEOUT_S = 10.0
DOCS = "docs/data.md"
_OFFLINE_HINT = (
  "Without internet access, copy CIFAR-10 onto this machine by hand instead "
  f"(formats and where to put them: {DOCS})."
)
_CHUNK = 1 << 20

_log = logging.getLogger("jaxml.data.fetch")


def _pickle_files() -> tuple[str, ...]:
  return cifar10.PICKLE_TRAIN + cifar10.PICKLE_TEST


def _missing(folder: pathlib.Path) -> list[str]:
  return [f for f in _pickle_files() if not (folder / f).is_file()]


def _one_line(e: BaseException) -> str:
  return " ".join(str(e).split()) or type(e).__name__


def _resolve(host: str, port: int, timeout: float) -> None:
  """Resolves `host` in a daemon thread so a resolver that never answers costs `timeout` s.

  (Socket timeouts do not cover name resolution: with DNS packets silently dropped, the system
  resolver can wait tens of seconds before it gives up.)
  """
  errors: list[BaseException] = []

  def work():
    try:
      socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except Exception as e:  # noqa: BLE001  (reported to the caller below)
      errors.append(e)

  thread = threading.Thread(target=work, name="jaxml-fetch-resolve", daemon=True)
  thread.start()
  thread.join(timeout)
  if thread.is_alive():
    raise DataError(
      f"cannot resolve {host}: no answer within {timeout:g} s (no internet access?). "
      + _OFFLINE_HINT
    )
  if errors:
    raise DataError(
      f"cannot resolve {host} ({_one_line(errors[0])}; no internet access?). " + _OFFLINE_HINT
    )


def _host_to_resolve(parts: urllib.parse.SplitResult) -> tuple[str, int] | None:
  """The host urllib will connect to for this URL (the proxy's when one applies)."""
  default_port = 443 if parts.scheme == "https" else 80
  proxy = urllib.request.getproxies().get(parts.scheme)
  if proxy and parts.hostname and not urllib.request.proxy_bypass(parts.hostname):
    proxy_parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if proxy_parts.hostname:
      return proxy_parts.hostname, proxy_parts.port or 80
    return None
  if not parts.hostname:
    return None
  try:
    return parts.hostname, parts.port or default_port
  except ValueError:  # a malformed port: urlopen reports it
    return parts.hostname, default_port


def _download(url: str, out, timeout: float) -> tuple[int, str]:
  """Streams `url` into the open binary file `out`; returns (bytes written, MD5 hex digest)."""
  parts = urllib.parse.urlsplit(url)
  if parts.scheme not in ("http", "https", "file"):
    raise DataError(f"cannot download {url!r}: only http(s):// and file:// URLs are supported.")
  if parts.scheme != "file":
    target = _host_to_resolve(parts)
    if target is not None:
      _resolve(*target, timeout)
  try:
    response = urllib.request.urlopen(url, timeout=timeout)  # noqa: S310  (scheme checked above)
  except urllib.error.HTTPError as e:
    raise DataError(f"cannot download {url}: HTTP {e.code} {e.reason}. " + _OFFLINE_HINT) from e
  except urllib.error.URLError as e:
    raise DataError(
      f"cannot download {url} ({_one_line(e.reason if e.reason else e)}; no internet access?). "
      + _OFFLINE_HINT
    ) from e
  except (OSError, ValueError, http.client.HTTPException) as e:  # timeouts, bad URLs, bad replies
    raise DataError(
      f"cannot download {url} ({_one_line(e)}; no internet access?). " + _OFFLINE_HINT
    ) from e
  digest = hashlib.md5(usedforsecurity=False)
  size = 0
  with response:
    length = response.headers.get("Content-Length", "")
    what = f"{int(length) / 2**20:.0f} MiB" if length.isdigit() else "size unknown"
    _log.info("Downloading %s (%s) ...", url, what)
    while True:
      try:
        chunk = response.read(_CHUNK)
      except (OSError, http.client.HTTPException) as e:  # a stalled or dropped connection
        raise DataError(
          f"downloading {url} failed after {size} bytes ({_one_line(e)}). Try again. "
          + _OFFLINE_HINT
        ) from e
      if not chunk:
        break
      out.write(chunk)
      digest.update(chunk)
      size += len(chunk)
  return size, digest.hexdigest()


def _check_members(tar: tarfile.TarFile, url: str) -> list[tarfile.TarInfo]:
  """Every member, or a DataError for one that could land outside the target directory."""
  members = tar.getmembers()
  for m in members:
    parts = m.name.replace("\\", "/").split("/")
    if m.name.startswith(("/", "\\")) or os.path.isabs(m.name) or ".." in parts or ":" in parts[0]:
      raise DataError(
        f"{url}: archive member {m.name!r} would be written outside the data directory; the "
        "archive is refused and nothing was kept."
      )
    if not (m.isfile() or m.isdir()):
      raise DataError(
        f"{url}: archive member {m.name!r} is a link or special file, not a plain file or "
        "directory; the archive is refused and nothing was kept."
      )
  return members


def _extract(archive: str, into: str, url: str) -> None:
  try:
    with tarfile.open(archive, "r:gz") as tar:
      members = _check_members(tar, url)
      if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4 / 3.10.12: refuses unsafe members.
        tar.extractall(into, members=members, filter="data")
      else:
        tar.extractall(into, members=members)  # noqa: S202  (members checked above)
  except (tarfile.TarError, EOFError, zlib.error) as e:
    raise DataError(
      f"{url}: not a readable .tar.gz archive ({_one_line(e)}); nothing was kept."
    ) from e


def _created_dirs(root: pathlib.Path) -> list[pathlib.Path]:
  """The directories `root.mkdir(parents=True)` would create, deepest first."""
  return [p for p in (root, *root.parents) if not p.exists()]


def fetch_cifar10(
  root: str | os.PathLike,
  url: str = CIFAR10_URL,
  md5: str = CIFAR10_MD5,
  timeout: float = TIMEOUT_S,
) -> pathlib.Path:
  """Makes `<root>/cifar-10-batches-py/` complete, downloading the archive if needed.

  Args:
    root: the data root (created if missing).
    url: the archive: the canonical one, a mirror, or a file:// URL.
    md5: the archive's expected MD5 hex digest.
    timeout: seconds for name resolution, connecting, and each read.

  Returns:
    The `cifar-10-batches-py` folder. When it is already complete nothing is downloaded.

  Raises:
    DataError: no network or an unreachable URL (within about `timeout` s), an HTTP error, a
      digest mismatch (naming both digests), an unsafe or unreadable archive, an archive without
      the six batches, a partial `cifar-10-batches-py/` already in `root` (never replaced), or a
      root that cannot be written. Nothing is left behind in `root` then.
  """
  root = pathlib.Path(root).expanduser()
  target = root / cifar10.PICKLE_DIR
  if target.is_dir() and not _missing(target):
    _log.info("CIFAR-10 is already in %s; nothing downloaded.", target)
    return target
  if target.exists():
    raise DataError(
      f"{target} exists but is not a complete CIFAR-10 copy (missing "
      f"{', '.join(_missing(target)) if target.is_dir() else 'everything: it is a file'}); it "
      "is left alone. Remove it and download again."
    )
  created = _created_dirs(root)
  archive, workdir, done = None, None, False
  try:
    try:
      root.mkdir(parents=True, exist_ok=True)
      fd, archive = tempfile.mkstemp(dir=root, prefix=".cifar-10-python.", suffix=".tar.gz.part")
    except OSError as e:
      raise DataError(f"cannot write to {root} ({_one_line(e)}).") from e
    try:
      with os.fdopen(fd, "wb") as f:
        size, got = _download(url, f, timeout)
    except OSError as e:  # the local write: disk full, quota
      raise DataError(f"cannot write the download into {root} ({_one_line(e)}).") from e
    if got != md5.lower():
      raise DataError(
        f"{url}: MD5 mismatch, expected {md5.lower()}, got {got} ({size} bytes): the download "
        "is corrupt or not the CIFAR-10 python archive; nothing was kept. Try again."
      )
    try:
      workdir = tempfile.mkdtemp(dir=root, prefix=f".{cifar10.PICKLE_DIR}.")
      _extract(archive, workdir, url)
      extracted = pathlib.Path(workdir) / cifar10.PICKLE_DIR
      if _missing(extracted):
        raise DataError(
          f"{url}: the archive has no complete {cifar10.PICKLE_DIR}/ (missing "
          f"{', '.join(_missing(extracted))}); nothing was kept."
        )
      try:
        os.rename(extracted, target)  # atomic: the loader sees no folder or a complete one
      except OSError:
        if not (target.is_dir() and not _missing(target)):
          raise
        _log.info("Another process put CIFAR-10 in %s first; using that copy.", target)
    except OSError as e:
      raise DataError(f"cannot extract the archive into {root} ({_one_line(e)}).") from e
    done = True
  finally:
    if archive is not None and os.path.exists(archive):
      os.unlink(archive)
    if workdir is not None:
      shutil.rmtree(workdir, ignore_errors=True)
    if not done:
      for d in created:  # deepest first; stops at the first one something else wrote into
        try:
          d.rmdir()
        except OSError:
          break
  _log.info("CIFAR-10: downloaded %s (%d bytes, MD5 ok) and extracted %s.", url, size, target)
  return target


def main(argv: list[str] | None = None) -> int:
  """`python -m jaxml.data.fetch cifar10 [--dir DIR]`: 0 when the data is in place, else one
  line on stderr and the DataError's exit code (3)."""
  default_root = locate.download_root()
  parser = argparse.ArgumentParser(
    prog="python -m jaxml.data.fetch",
    description=f"Download a data set jaxml reads (needs internet access). See {DOCS}.",
  )
  parser.add_argument("dataset", choices=["cifar10"])
  parser.add_argument(
    "--dir",
    default=None,
    help="data root to put cifar-10-batches-py/ in (default: $JAXML_DATA_DIR if set, else "
    f"$JAXML_CACHE_DIR/data, i.e. ~/.cache/jaxml/data; here: {default_root})",
  )
  parser.add_argument("--url", default=CIFAR10_URL, help="the archive, or a mirror of it")
  parser.add_argument("--md5", default=CIFAR10_MD5, help="the archive's MD5 (a mirror's own)")
  parser.add_argument(
    "--timeout", type=float, default=TIMEOUT_S, help="seconds per network step (default 10)"
  )
  args = parser.parse_args(argv)
  handler = logging.StreamHandler(sys.stdout)
  handler.setFormatter(logging.Formatter("%(message)s"))
  saved = _log.level, _log.propagate
  _log.addHandler(handler)
  _log.setLevel(logging.INFO)
  _log.propagate = False  # one plain line on stdout, not also the root logger's
  try:
    fetch_cifar10(args.dir or default_root, url=args.url, md5=args.md5, timeout=args.timeout)
  except DataError as e:
    print(f"jaxml.data.fetch: error: {_one_line(e)}", file=sys.stderr)
    return e.exit_code
  except KeyboardInterrupt:
    print("jaxml.data.fetch: interrupted; nothing was kept.", file=sys.stderr)
    return 130
  finally:
    _log.removeHandler(handler)
    _log.setLevel(saved[0])
    _log.propagate = saved[1]
  return 0


if __name__ == "__main__":
  sys.exit(main())
