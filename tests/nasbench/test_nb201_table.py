"""NAS-Bench-201 table: parsing, dense layout, jittable queries, clear DataErrors; the real file."""

import csv
import pathlib

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml.data import locate
from jaxml.errors import DataError
from jaxml.nasbench import nb201
from jaxml.spaces import nb201_encoding as E

EXAMPLE = (
  "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
)


def synthetic_accuracy(seed: int = 0) -> np.ndarray:
  """[3, 15625] distinct accuracies in (10, 95)."""
  rng = np.random.default_rng(seed)
  return 10.0 + 85.0 * rng.permutation(15625)[None, :].repeat(3, 0) / 15625 + rng.random((3, 1))


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
  """A full synthetic table in a shuffled row order, every arch in one of 7 'iso classes'."""
  d = tmp_path_factory.mktemp("nb") / "nasbench201"
  d.mkdir()
  acc = synthetic_accuracy()
  unique = [f"class{i % 7}" for i in range(15625)]
  nb201.write_csv(d / nb201.FILENAME, acc, unique)
  lines = (d / nb201.FILENAME).read_text().splitlines()
  rng = np.random.default_rng(1)
  body = [lines[1 + i] for i in rng.permutation(15625)]
  (d / nb201.FILENAME).write_text("\n".join([lines[0], *body]) + "\n")
  return d, acc, unique


def test_synthetic_round_trip(synthetic):
  d, acc, unique = synthetic
  table = nb201.load(str(d.parent))  # the explicit dir may point at the data root ...
  table2 = nb201.read_csv(d / nb201.FILENAME)  # ... or the file may be read directly
  chex.assert_shape(table.accuracy, (3, 15625))
  np.testing.assert_allclose(table.accuracy, acc, rtol=1e-6)
  np.testing.assert_array_equal(table.accuracy, table2.accuracy)
  assert table.unique_strings == tuple(f"class{i}" for i in range(7))
  np.testing.assert_array_equal(table.iso_id, np.arange(15625) % 7)
  for i, dataset in enumerate(nb201.DATASETS):
    assert table.optimum(dataset) == pytest.approx(acc[i].max(), rel=1e-6)
    assert E.encoding_to_index(table.argmax(dataset)) == np.argmax(acc[i])


def test_query_by_encoding_jit_vmap_and_string(synthetic):
  d, acc, _ = synthetic
  table = nb201.load(str(d))
  encs = jnp.asarray(E.enumerate_all()[::131])
  want = acc[1, ::131]
  np.testing.assert_allclose(table.query(encs, "cifar100"), want, rtol=1e-6)
  q = jax.jit(lambda t, e: t.query(e, "cifar100"))  # the table is a pytree argument
  np.testing.assert_allclose(q(table, encs), want, rtol=1e-6)
  np.testing.assert_allclose(jax.vmap(lambda e: table.query(e, "cifar100"))(encs), want, rtol=1e-6)
  idx = E.encoding_to_index(E.from_string(EXAMPLE))
  assert table.query_string(EXAMPLE, "imagenet16-120") == pytest.approx(acc[2, idx], rel=1e-6)
  np.testing.assert_array_equal(jax.jit(table.iso_class)(encs), np.arange(0, 15625, 131) % 7)


def _rewrite(src: pathlib.Path, dst_dir: pathlib.Path, edit) -> pathlib.Path:
  rows = list(csv.reader(src.open()))
  rows = edit(rows)
  dst_dir.mkdir(parents=True, exist_ok=True)
  with open(dst_dir / nb201.FILENAME, "w", newline="") as f:
    csv.writer(f).writerows(rows)
  return dst_dir


def _set(rows, r, c, v):
  rows[r][c] = v
  return rows


@pytest.mark.parametrize(
  "name,edit,match",
  [
    ("columns", lambda rows: [r[:3] + r[4:] for r in rows], "missing column"),
    ("truncated", lambda rows: rows[:-1], "expected all 15625"),
    ("duplicate", lambda rows: rows[:-1] + [rows[1]], "already appeared"),
    ("bad_arch", lambda rows: _set(rows, 5, 3, "|conv~0|+|x|"), "unparsable"),
    ("bad_node", lambda rows: _set(rows, 5, 3, rows[5][3].replace("~1|", "~0|")), "unparsable"),
    ("bad_number", lambda rows: _set(rows, 7, 0, "abc"), "not a number"),
    ("nan", lambda rows: _set(rows, 7, 1, "nan"), "not an accuracy"),
    ("short_row", lambda rows: rows[:9] + [rows[9][:2]] + rows[10:], "too few fields"),
    ("empty_unique", lambda rows: _set(rows, 3, 4, ""), "empty UniqueString"),
  ],
)
def test_malformed_tables_raise_data_error(synthetic, tmp_path, name, edit, match):
  d, _, _ = synthetic
  bad = _rewrite(d / nb201.FILENAME, tmp_path / name, edit)
  with pytest.raises(DataError, match=match):
    nb201.load(str(bad))


def test_missing_table_names_places_searched(tmp_path, monkeypatch):
  monkeypatch.setenv(locate.ENV_VAR, str(tmp_path / "env"))
  monkeypatch.setattr(locate, "REPO_ROOT", tmp_path / "repo")
  with pytest.raises(DataError, match="nasbench201 data not found") as e:
    nb201.load(str(tmp_path / "nowhere"))
  assert str(tmp_path / "nowhere") in str(e.value)


def test_bad_dataset_name(synthetic):
  from jaxml.errors import ConfigError

  table = nb201.load(str(synthetic[0]))
  with pytest.raises(ConfigError, match="unknown NB201 dataset"):
    table.values("imagenet")


REAL = locate.find_dataset_dir(nb201.DATASET_DIR, (nb201.FILENAME,))


@pytest.mark.skipif(REAL is None, reason="real NAS-Bench-201 CSV not available")
def test_real_table():
  table = nb201.load()
  assert int(np.sum(np.isfinite(np.asarray(table.accuracy)))) == 3 * 15625
  assert round(table.optimum("cifar10"), 2) == 94.37
  assert round(table.optimum("cifar100"), 2) == 73.51
  assert round(table.optimum("imagenet16-120"), 2) == 47.31
  assert len(table.unique_strings) == 6466  # isomorphism classes of the NAS-Bench-201 space
  # The CSV's second row, looked up by its arch string.
  assert table.query_string(EXAMPLE, "cifar10") == pytest.approx(93.66, abs=1e-3)
  # Isomorphic cells share a class: swapping a 'none' edge's op leaves the class unchanged for
  # the all-'none' cell, whose output is zero whatever dead ops it carries.
  cls = np.asarray(table.iso_id)
  zero = E.encoding_to_index(np.zeros(6, np.int32))
  assert cls[E.encoding_to_index([1, 0, 0, 0, 0, 0])] == cls[zero]
