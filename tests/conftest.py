"""Shared fixtures: a tiny CIFAR-10 copy on disk and a tiny plain-training config.

The helpers behind them are in tests/train_fixtures.py (import from there, not from conftest:
several conftest.py modules share that name). `REPO_ROOT` and `set_path` are re-exported here
for tests that still import them from conftest.

The session also gets a persistent XLA compilation cache in a temporary directory: end-to-end
tests build the same tiny model in several runs (fresh run, resume, corrupt-checkpoint resume),
and each run's jitted closures are new functions, so without it every run recompiles the same
programs (a few seconds each on a 2-core CPU). A cache hit returns the executable XLA would have
built from the identical program, so results do not change. A cache the user configured
($JAX_COMPILATION_CACHE_DIR) is left alone.

Every compile is cached (`jax_persistent_cache_min_compile_time_secs` 0, unless
$JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS says otherwise): the tiny tests' programs compile in
under jax's default 1 s threshold, and each is built again by later runs and tests. Under
pytest-xdist the controller makes the directory and its workers inherit it through
$JAX_COMPILATION_CACHE_DIR (one cache for all of them; subprocesses a test starts inherit it too);
the controller removes it at the end.
"""

import os
import pathlib
import shutil
import tempfile

import jax
import pytest
import train_fixtures
from train_fixtures import REPO_ROOT, set_path  # noqa: F401  (re-exported, see above)

_JIT_CACHE: list[str] = []


def pytest_configure(config):
  del config
  if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"  # xdist workers, subprocesses
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  if os.environ.get("JAX_COMPILATION_CACHE_DIR") or jax.config.jax_compilation_cache_dir:
    return  # the user's, or (an xdist worker) the controller's
  _JIT_CACHE.append(tempfile.mkdtemp(prefix="jaxml-tests-xla-cache-"))
  os.environ["JAX_COMPILATION_CACHE_DIR"] = _JIT_CACHE[0]
  jax.config.update("jax_compilation_cache_dir", _JIT_CACHE[0])


def pytest_unconfigure(config):
  del config
  for d in _JIT_CACHE:
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(name="tiny_images")
def tiny_images_fixture():
  """`train_fixtures.tiny_images(labels, rng)`: uint8 images with a per-class colour."""
  return train_fixtures.tiny_images


@pytest.fixture(scope="session")
def tiny_cifar_dir(tmp_path_factory) -> pathlib.Path:
  """A data root holding a tiny `cifar-10-batches-py` (20 train / 10 test images per class)."""
  root = tmp_path_factory.mktemp("tiny_cifar")
  train_fixtures.write_cifar_pickles(root)
  return root


@pytest.fixture(scope="session")
def tiny_train_config(tiny_cifar_dir, tmp_path_factory):
  """Factory: `tiny_train_config(**{'optim.lr': 0.05, ...})` -> `train_fixtures.tiny_train_config`
  on `tiny_cifar_dir`, with a session cache dir for the decoded arrays."""
  cache = tmp_path_factory.mktemp("tiny_cifar_cache")
  return lambda **overrides: train_fixtures.tiny_train_config(tiny_cifar_dir, cache, **overrides)
