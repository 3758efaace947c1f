"""The opt-in CIFAR-10 download (jaxml/data/fetch.py, config.data.download), all offline: a tiny
`cifar-10-python.tar.gz` served from 127.0.0.1 or a file:// URL stands in for the real one."""

import functools
import hashlib
import http.server
import io
import os
import pathlib
import socket
import subprocess
import sys
import tarfile
import threading
import urllib.request

import numpy as np
import pytest
import train_fixtures

from jaxml.data import cifar10, fetch, locate, splits
from jaxml.errors import ConfigError, DataError

PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
  """127.0.0.1 must be reached directly, whatever proxy the machine running the tests sets."""
  for var in PROXY_VARS:
    monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv(var.upper(), raising=False)


def _md5(path: pathlib.Path) -> str:
  return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def _tar(path: pathlib.Path, source_dir: pathlib.Path, extra=()) -> pathlib.Path:
  """A .tar.gz of `source_dir` as `cifar-10-batches-py/`, plus (TarInfo, bytes) `extra` members."""
  with tarfile.open(path, "w:gz") as tar:
    tar.add(source_dir, arcname=cifar10.PICKLE_DIR)
    for info, data in extra:
      tar.addfile(info, io.BytesIO(data) if data is not None else None)
  return path


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> tuple[pathlib.Path, str, pathlib.Path]:
  """(the tiny `cifar-10-python.tar.gz`, its MD5, the `cifar-10-batches-py` it was made from)."""
  d = tmp_path_factory.mktemp("archive")
  batches = train_fixtures.write_cifar_pickles(d / "src")
  (batches / "batches.meta").write_bytes(b"meta")  # as in the real archive: extra files are kept
  path = _tar(d / "cifar-10-python.tar.gz", batches)
  return path, _md5(path), batches


@pytest.fixture(scope="module")
def server(archive):
  """http://127.0.0.1:<port>/ serving the archive's folder, in a thread."""

  class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
      del args

  handler = functools.partial(Quiet, directory=str(archive[0].parent))
  httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
  thread = threading.Thread(target=httpd.serve_forever, daemon=True)
  thread.start()
  yield f"http://127.0.0.1:{httpd.server_address[1]}"
  httpd.shutdown()
  httpd.server_close()


def _closed_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _load(root: pathlib.Path, cache: pathlib.Path, **kw):
  return cifar10.load_cifar10(str(root), cache, use_tfds=False, expected_per_class=None, **kw)


def _assert_same_as_source(raw, batches: pathlib.Path, cache: pathlib.Path):
  want = _load(batches.parent, cache / "want")
  for got, ref in zip(raw[:4], want[:4], strict=True):
    np.testing.assert_array_equal(got, ref)
  n = cifar10.NUM_CLASSES
  assert raw.train_labels.shape == (n * train_fixtures.TINY_TRAIN_PER_CLASS,)
  assert raw.test_labels.shape == (n * train_fixtures.TINY_TEST_PER_CLASS,)


def test_http_download_is_checked_extracted_and_loadable(tmp_path, archive, server):
  path, md5, batches = archive
  root = tmp_path / "new" / "root"  # created by the fetch
  got = fetch.fetch_cifar10(root, url=f"{server}/{path.name}", md5=md5)
  assert got == root / cifar10.PICKLE_DIR
  assert sorted(p.name for p in root.iterdir()) == [cifar10.PICKLE_DIR]  # no temp files left
  assert (got / "batches.meta").read_bytes() == b"meta"
  raw = _load(root, tmp_path / "cache")
  assert raw.source == f"pickle:{got}"
  _assert_same_as_source(raw, batches, tmp_path / "cache")


def _no_network(monkeypatch):
  """Any name lookup, URL open or download from here on fails the test."""

  def refuse(*args, **kw):
    raise AssertionError(f"network touched: {args}")

  for module, name in ((socket, "getaddrinfo"), (urllib.request, "urlopen"), (fetch, "_download")):
    monkeypatch.setattr(module, name, refuse)


def test_file_url_and_a_complete_copy_is_not_fetched_again(tmp_path, archive, monkeypatch):
  path, md5, _ = archive
  got = fetch.fetch_cifar10(tmp_path, url=path.as_uri(), md5=md5.upper())
  before = {p: p.stat().st_mtime_ns for p in got.iterdir()}
  # Complete already: returns without a lookup, a connection or a download (the URL and the
  # digest are wrong, so any of those would fail), and without writing anything.
  _no_network(monkeypatch)
  again = fetch.fetch_cifar10(tmp_path, url=f"http://127.0.0.1:{_closed_port()}/x", md5="0" * 32)
  assert again == got
  assert {p: p.stat().st_mtime_ns for p in got.iterdir()} == before
  assert sorted(p.name for p in tmp_path.iterdir()) == [cifar10.PICKLE_DIR]  # no temp files


def test_corrupted_archive_is_refused_and_nothing_is_left(tmp_path, archive, server):
  path, md5, _ = archive
  bad = tmp_path / "served" / path.name
  bad.parent.mkdir()
  data = bytearray(path.read_bytes())
  data[len(data) // 2] ^= 0xFF
  bad.write_bytes(bytes(data))
  root = tmp_path / "root"
  with pytest.raises(DataError) as err:
    fetch.fetch_cifar10(root, url=bad.as_uri(), md5=md5)
  msg = str(err.value)
  assert f"expected {md5}, got {_md5(bad)}" in msg and "nothing was kept" in msg
  assert not root.exists()  # the root it created is removed again
  # A wrong published digest over HTTP: the same refusal; an existing root is left empty.
  root.mkdir()
  with pytest.raises(DataError, match="MD5 mismatch, expected 0{32}, got " + md5):
    fetch.fetch_cifar10(root, url=f"{server}/{path.name}", md5="0" * 32)
  assert list(root.iterdir()) == []


def test_unreadable_archive_with_matching_digest_is_refused(tmp_path):
  bad = tmp_path / "not.tar.gz"
  bad.write_bytes(b"this is not a gzip file")
  root = tmp_path / "root"
  with pytest.raises(DataError, match="not a readable .tar.gz"):
    fetch.fetch_cifar10(root, url=bad.as_uri(), md5=_md5(bad))
  assert not root.exists()


def test_archive_without_the_batches_is_refused(tmp_path, archive):
  _, _, batches = archive
  partial = tmp_path / "partial"
  partial.mkdir()
  (partial / "data_batch_1").write_bytes((batches / "data_batch_1").read_bytes())
  path = _tar(tmp_path / "partial.tar.gz", partial)
  root = tmp_path / "root"
  with pytest.raises(DataError, match="missing data_batch_2"):
    fetch.fetch_cifar10(root, url=path.as_uri(), md5=_md5(path))
  assert not root.exists()


def _member(name: str, kind=tarfile.REGTYPE, data: bytes | None = b"x", link: str = ""):
  info = tarfile.TarInfo(name)
  info.type, info.linkname = kind, link
  info.size = len(data) if data is not None and kind == tarfile.REGTYPE else 0
  return info, data if kind == tarfile.REGTYPE else None


@pytest.mark.parametrize(
  "member, message",
  [
    (_member("../evil"), "outside the data directory"),
    (_member(f"{cifar10.PICKLE_DIR}/../../evil"), "outside the data directory"),
    (_member("/tmp/jaxml-evil"), "outside the data directory"),
    (_member("evil-link", tarfile.SYMTYPE, link="/etc/passwd"), "link or special file"),
    (_member("evil-hard", tarfile.LNKTYPE, link="../../etc/passwd"), "link or special file"),
  ],
)
def test_unsafe_archive_members_are_refused(tmp_path, archive, member, message):
  _, _, batches = archive
  path = _tar(tmp_path / "evil.tar.gz", batches, extra=[member])
  root = tmp_path / "a" / "root"
  with pytest.raises(DataError, match=message):
    fetch.fetch_cifar10(root, url=path.as_uri(), md5=_md5(path))
  assert not (tmp_path / "a").exists()
  assert not (tmp_path / "evil").exists() and not pathlib.Path("/tmp/jaxml-evil").exists()


def _spy_urlopen(monkeypatch) -> list[float]:
  """Records the `timeout` of every urlopen call (they still go through)."""
  timeouts, real = [], urllib.request.urlopen

  def spy(url, *args, timeout=None, **kw):
    timeouts.append(timeout)
    return real(url, *args, timeout=timeout, **kw)

  monkeypatch.setattr(urllib.request, "urlopen", spy)
  return timeouts


def test_unreachable_server_fails_with_the_timeout_set(tmp_path, monkeypatch):
  root = tmp_path / "root"
  timeouts = _spy_urlopen(monkeypatch)
  with pytest.raises(DataError) as err:
    fetch.fetch_cifar10(root, url=f"http://127.0.0.1:{_closed_port()}/cifar-10-python.tar.gz")
  assert timeouts == [fetch.TIMEOUT_S]  # one try, bounded: never the socket default (none)
  msg = str(err.value)
  assert "cannot download" in msg and "docs/data.md" in msg and "\n" not in msg
  assert not root.exists()


def test_a_server_that_never_answers_times_out(tmp_path, monkeypatch):
  """Connects (the kernel accepts into the backlog) but never replies: the read times out, after
  the timeout given (it is what urlopen gets)."""
  timeouts = _spy_urlopen(monkeypatch)
  with socket.socket() as listener:
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/x"
    with pytest.raises(DataError, match="timed out"):
      fetch.fetch_cifar10(tmp_path / "root", url=url, timeout=0.5)
  assert timeouts == [0.5]
  assert not (tmp_path / "root").exists()


def test_a_resolver_that_never_answers_costs_only_the_timeout(tmp_path, monkeypatch):
  """The lookup hangs until released: the fetch gives up (after the timeout it was given) while
  the lookup is still waiting, instead of waiting for it."""
  release, asked, answered = threading.Event(), threading.Event(), threading.Event()
  real = socket.getaddrinfo

  def hanging(host, *args, **kw):
    if host == "cifar.example.invalid":
      asked.set()
      release.wait(60)
      answered.set()
      raise socket.gaierror("released")
    return real(host, *args, **kw)

  monkeypatch.setattr(socket, "getaddrinfo", hanging)
  try:
    with pytest.raises(
      DataError, match="cannot resolve cifar.example.invalid: no answer within 0.5 s"
    ):
      fetch.fetch_cifar10(tmp_path / "root", url="https://cifar.example.invalid/x", timeout=0.5)
    assert asked.is_set() and not answered.is_set()  # returned while the lookup still hung
  finally:
    release.set()
  assert not (tmp_path / "root").exists()


def test_a_partial_copy_in_the_root_is_left_alone(tmp_path, archive):
  path, md5, _ = archive
  partial = tmp_path / cifar10.PICKLE_DIR
  partial.mkdir()
  (partial / "data_batch_1").write_bytes(b"mine")
  with pytest.raises(DataError, match="not a complete CIFAR-10 copy .missing data_batch_2"):
    fetch.fetch_cifar10(tmp_path, url=path.as_uri(), md5=md5)
  assert [p.name for p in partial.iterdir()] == ["data_batch_1"]
  assert sorted(p.name for p in tmp_path.iterdir()) == [cifar10.PICKLE_DIR]


@pytest.fixture
def local_default(monkeypatch, archive, server):
  """fetch_cifar10 defaults to the tiny archive on 127.0.0.1 instead of the real URL."""
  path, md5, _ = archive
  real = fetch.fetch_cifar10
  monkeypatch.setattr(
    fetch, "fetch_cifar10", functools.partial(real, url=f"{server}/{path.name}", md5=md5)
  )


def _data_cfg(**kw):
  cfg = splits.default_data_config()
  cfg.update(use_tfds=False, val_size=20, **kw)
  return cfg


def test_config_download_fetches_into_the_explicit_dir(tmp_path, archive, local_default):
  _, _, batches = archive
  root = tmp_path / "mine"
  cfg = _data_cfg(dir=str(root), cache_dir=str(tmp_path / "cache"))
  with pytest.raises(DataError, match=rf"config.data.dir={root} holds no CIFAR-10.*download"):
    splits.build_datasets(cfg, seed=0, expected_per_class=None)  # download=False: refused
  assert not root.exists()
  cfg.download = True
  ds = splits.build_datasets(cfg, seed=0, expected_per_class=None)
  assert ds.source == f"pickle:{root / cifar10.PICKLE_DIR}"
  assert len(ds.val.labels) == 20 and len(ds.test.labels) == 10 * 10
  _assert_same_as_source(_load(root, tmp_path / "cache"), batches, tmp_path / "cache")
  assert len(list((tmp_path / "cache").glob("cifar10-pickle-*.npz"))) == 1  # cached as usual


def test_config_download_without_a_dir_goes_to_the_download_root(
  tmp_path, monkeypatch, local_default
):
  # tests/data/conftest.py: no $JAXML_DATA_DIR, $JAXML_CACHE_DIR in a temporary directory.
  monkeypatch.setenv("JAXML_CACHE_DIR", str(tmp_path / "jaxml-cache"))
  root = locate.download_root()
  assert root == tmp_path / "jaxml-cache" / "data"
  assert cifar10.search_roots() == [*cifar10.locate.candidate_roots(), root]  # after shared/data
  with pytest.raises(DataError) as err:
    cifar10.load_cifar10(use_tfds=False, expected_per_class=None)
  msg = str(err.value)
  assert str(root) in msg  # searched
  assert "python -m jaxml.data.fetch cifar10" in msg and "--config.data.download=True" in msg
  assert "docs/data.md" in msg
  raw = cifar10.load_cifar10(use_tfds=False, expected_per_class=None, download=True)
  assert raw.source == f"pickle:{root / cifar10.PICKLE_DIR}"
  # Found there by the ordinary search from now on, without download.
  assert cifar10.load_cifar10(use_tfds=False, expected_per_class=None).source == raw.source
  # $JAXML_DATA_DIR, when set, is where downloads go (and it is searched first).
  monkeypatch.setenv("JAXML_DATA_DIR", str(tmp_path / "env"))
  assert locate.download_root() == tmp_path / "env"
  assert cifar10.search_roots().count(tmp_path / "env") == 1


def test_config_download_offline_fails_fast_with_one_clear_line(tmp_path, monkeypatch):
  url = f"http://127.0.0.1:{_closed_port()}/cifar-10-python.tar.gz"
  monkeypatch.setattr(fetch, "fetch_cifar10", functools.partial(fetch.fetch_cifar10, url=url))
  cfg = _data_cfg(dir=str(tmp_path / "root"), cache_dir=str(tmp_path / "cache"), download=True)
  timeouts = _spy_urlopen(monkeypatch)
  with pytest.raises(DataError) as err:
    splits.build_datasets(cfg, seed=0, expected_per_class=None)
  assert timeouts == [fetch.TIMEOUT_S]  # one bounded try
  msg = str(err.value)
  assert "config.data.download=True failed: cannot download" in msg and "docs/data.md" in msg
  assert "\n" not in msg and not (tmp_path / "root").exists()


def test_download_must_be_a_bool(tmp_path):
  cfg = _data_cfg(dir=str(tmp_path))
  del cfg["download"]  # a ConfigDict field keeps its type; a hand-built block may not
  cfg["download"] = "yes"
  with pytest.raises(ConfigError, match="config.data.download must be True or False"):
    splits.build_datasets(cfg, seed=0, expected_per_class=None)


def _cli(*args: str, env_extra=None) -> subprocess.CompletedProcess:
  env = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARS}
  env.update(JAX_PLATFORMS="cpu", **(env_extra or {}))
  return subprocess.run(
    [sys.executable, "-m", "jaxml.data.fetch", "cifar10", *args],
    capture_output=True,
    text=True,
    env=env,
    cwd=train_fixtures.REPO_ROOT,
    timeout=60,
  )


def test_cli_downloads_and_fails_with_one_line_and_exit_3(tmp_path, archive):
  path, md5, _ = archive
  target = tmp_path / "out"
  done = _cli("--dir", str(target), "--url", path.as_uri(), "--md5", md5)
  assert done.returncode == 0, done.stderr
  assert (target / cifar10.PICKLE_DIR / "test_batch").is_file()
  assert f"extracted {target / cifar10.PICKLE_DIR}" in done.stdout and done.stderr == ""

  url = f"http://127.0.0.1:{_closed_port()}/x"
  failed = _cli("--dir", str(tmp_path / "offline"), "--url", url)
  assert failed.returncode == DataError.exit_code == 3
  lines = failed.stderr.splitlines()
  assert len(lines) == 1 and lines[0].startswith("jaxml.data.fetch: error: cannot download")
  assert "docs/data.md" in lines[0]
  assert not (tmp_path / "offline").exists()

  bad_md5 = _cli("--dir", str(tmp_path / "bad"), "--url", path.as_uri(), "--md5", "0" * 32)
  assert bad_md5.returncode == 3 and "MD5 mismatch" in bad_md5.stderr
  assert len(bad_md5.stderr.splitlines()) == 1 and not (tmp_path / "bad").exists()


def test_cli_default_dir_is_the_download_root(tmp_path, monkeypatch, archive, capsys):
  path, md5, _ = archive
  monkeypatch.setenv("JAXML_CACHE_DIR", str(tmp_path / "c"))
  assert fetch.main(["cifar10", "--url", path.as_uri(), "--md5", md5]) == 0
  assert (tmp_path / "c" / "data" / cifar10.PICKLE_DIR / "data_batch_5").is_file()
  out = capsys.readouterr().out
  assert "nothing downloaded" not in out
  assert fetch.main(["cifar10"]) == 0  # complete: no network needed
  assert "already in" in capsys.readouterr().out
