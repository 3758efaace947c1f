"""CIFAR-10 formats, search order and the not-found error (jaxml/data/cifar10.py)."""

import json
import sys
import types

import numpy as np
import pytest

from jaxml.data import cifar10, locate
from jaxml.errors import DataError


def _load(data_dir, cache_dir, **kw):
  kw.setdefault("expected_per_class", None)
  return cifar10.load_cifar10(str(data_dir) if data_dir else None, cache_dir, **kw)


def test_zip_format_shapes_dtypes_order_and_values(tmp_path, make_data):
  train_x, train_y, test_x, test_y = make_data.write_zip_copy(tmp_path / "data", 3, 2)
  raw = _load(tmp_path / "data", tmp_path / "cache", expected_per_class=(3, 2))
  assert raw.train_images.shape == (30, 32, 32, 3) and raw.train_images.dtype == np.uint8
  assert raw.test_images.shape == (20, 32, 32, 3) and raw.test_labels.dtype == np.int32
  # Class by class in label order (airplane=0 ... truck=9), by file name within a class.
  np.testing.assert_array_equal(raw.train_labels, np.repeat(np.arange(10), 3))
  np.testing.assert_array_equal(raw.test_labels, test_y)
  # JPEG is lossy: compare with what PIL decodes from the same bytes.
  np.testing.assert_array_equal(raw.train_images, train_x)
  np.testing.assert_array_equal(raw.test_images, test_x)
  assert raw.source.startswith("zip:")


def test_explicit_dir_may_be_the_dataset_folder_itself(tmp_path, make_data):
  make_data.write_zip_copy(tmp_path, 1, 1)
  raw = _load(tmp_path / "cifar10", tmp_path / "cache")
  assert raw.train_labels.shape == (10,)


def test_pickle_format_converts_chw_rows_and_orders_by_class(tmp_path, make_data):
  train_x, train_y, test_x, test_y = make_data.write_pickles(
    tmp_path, train_per_batch=10, test_size=20
  )
  raw = _load(tmp_path, tmp_path / "cache", expected_per_class=(5, 2))
  assert raw.train_images.shape == (50, 32, 32, 3) and raw.train_images.dtype == np.uint8
  assert raw.source.startswith("pickle:")
  for got_x, got_y, x, y in ((raw.train_images, raw.train_labels, train_x, train_y),
                             (raw.test_images, raw.test_labels, test_x, test_y)):  # fmt: skip
    # Canonical order: stable sort by label of the original (batch 1..5) order.
    order = np.concatenate([np.flatnonzero(y == c) for c in range(10)])
    np.testing.assert_array_equal(got_y, y[order])
    np.testing.assert_array_equal(got_x, x[order])


def test_zip_preferred_to_pickles_in_the_same_root(tmp_path, make_data):
  make_data.write_pickles(tmp_path)
  make_data.write_zip_copy(tmp_path, 1, 1)
  assert _load(tmp_path, tmp_path / "cache").source.startswith("zip:")


def test_search_order_explicit_then_env_then_shared(
  tmp_path, make_data, monkeypatch, isolated_data_search
):
  shared = isolated_data_search.parent / "shared" / "data"
  make_data.write_zip_copy(shared, 1, 1)
  make_data.write_zip_copy(tmp_path / "env", 2, 1)
  make_data.write_zip_copy(tmp_path / "explicit", 3, 1)
  cache = tmp_path / "cache"
  assert _load(None, cache).train_labels.shape == (10,)  # ../shared/data
  monkeypatch.setenv(locate.ENV_VAR, str(tmp_path / "env"))
  assert _load(None, cache).train_labels.shape == (20,)
  assert _load(tmp_path / "explicit", cache).train_labels.shape == (30,)


def test_missing_data_lists_every_place_searched(tmp_path, monkeypatch, isolated_data_search):
  (tmp_path / "env").mkdir()
  monkeypatch.setenv(locate.ENV_VAR, str(tmp_path / "env"))
  with pytest.raises(DataError) as err:
    _load(None, tmp_path / "cache")
  msg = str(err.value)
  for place in (tmp_path / "env", isolated_data_search.parent / "shared"):
    assert str(place) in msg
  assert "TFDS" in msg and "config.data.dir" in msg and "cifar-10-python.tar.gz" in msg


def test_an_explicit_dir_is_the_only_place_searched(tmp_path, monkeypatch, make_data):
  """A folder the user names is used or refused, never replaced by a copy found elsewhere."""
  make_data.write_zip_copy(tmp_path / "env", 2, 1)
  monkeypatch.setenv(locate.ENV_VAR, str(tmp_path / "env"))
  (tmp_path / "explicit").mkdir()
  with pytest.raises(DataError) as err:
    _load(tmp_path / "explicit", tmp_path / "cache")
  msg = str(err.value)
  assert f"config.data.dir={tmp_path / 'explicit'} holds no CIFAR-10" in msg
  assert str(tmp_path / "env") not in msg and "\n" not in msg


def test_missing_data_with_tfds_disabled_says_so(tmp_path):
  with pytest.raises(DataError, match="use_tfds=False"):
    _load(None, tmp_path / "cache", use_tfds=False)


def test_canonical_order_uses_tfds_ids():
  labels = np.array([1, 0, 1, 0])
  ids = ["train_00003", "train_00002", "train_00000", "train_00001"]
  np.testing.assert_array_equal(cifar10.canonical_order(labels, ids), [3, 1, 2, 0])
  np.testing.assert_array_equal(cifar10.canonical_order(labels), [1, 3, 0, 2])


def _prepared_tfds(tmp_path, monkeypatch, tfds_module):
  """A prepared-looking TFDS dir plus a builder serving shuffled examples, as TFDS would."""
  version_dir = tmp_path / "tfds" / "cifar10" / "3.0.2"
  version_dir.mkdir(parents=True)
  (version_dir / "dataset_info.json").write_text(json.dumps({"name": "cifar10"}))
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
  rng = np.random.default_rng(0)
  splits = {}
  for split, n in (("train", 30), ("test", 20)):
    x = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    y = np.arange(n) % 10
    ids = np.array([f"{split}_{i:05d}".encode() for i in range(n)], dtype=object)
    perm = rng.permutation(n)  # TFDS serves records shuffled across shards.
    splits[split] = ({"image": x[perm], "label": y[perm], "id": ids[perm]}, x, y)

  class Builder:
    def __init__(self, name, data_dir):
      assert name == "cifar10:3.0.2" and data_dir == str(tmp_path / "tfds")

    def as_dataset(self, split, batch_size):
      assert batch_size == -1
      return splits[split][0]

  real = hasattr(tfds_module, "__file__")  # The installed package, not the stand-in.
  monkeypatch.setattr(tfds_module, "builder", Builder, raising=real)
  monkeypatch.setattr(tfds_module, "as_numpy", lambda ds: ds, raising=real)
  return splits


def _check_tfds_load(tmp_path, splits):
  raw = _load(None, tmp_path / "cache", expected_per_class=(3, 2))
  assert raw.source.startswith("tfds:")
  for split, got_x, got_y in (("train", raw.train_images, raw.train_labels),
                              ("test", raw.test_images, raw.test_labels)):  # fmt: skip
    _, x, y = splits[split]
    order = np.argsort(y, kind="stable")
    np.testing.assert_array_equal(got_y, y[order])
    np.testing.assert_array_equal(got_x, x[order])
  with pytest.raises(DataError, match="use_tfds=False"):
    _load(None, tmp_path / "cache2", use_tfds=False)


def test_tfds_route_with_stand_in_module(tmp_path, monkeypatch):
  """Exercises the TFDS route without TFDS installed: a stand-in module with its two calls."""
  fake = types.ModuleType("tensorflow_datasets")
  monkeypatch.setitem(sys.modules, "tensorflow_datasets", fake)
  monkeypatch.setattr(cifar10, "_tfds_installed", lambda: True)
  _check_tfds_load(tmp_path, _prepared_tfds(tmp_path, monkeypatch, fake))


def test_tfds_route_with_real_tfds(tmp_path, monkeypatch):
  tfds = pytest.importorskip("tensorflow_datasets")
  _check_tfds_load(tmp_path, _prepared_tfds(tmp_path, monkeypatch, tfds))


def test_tfds_unprepared_is_not_used(tmp_path, monkeypatch):
  monkeypatch.setattr(cifar10, "_tfds_installed", lambda: True)
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
  with pytest.raises(DataError, match="not prepared"):
    _load(None, tmp_path / "cache")
