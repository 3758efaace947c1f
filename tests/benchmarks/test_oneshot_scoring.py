"""Smoke test of benchmarks/oneshot_scoring.py: tiniest settings, JSON schema (no timing)."""

import importlib.util
import json
import pathlib

import pytest

from jaxml.errors import ConfigError

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _load():
  spec = importlib.util.spec_from_file_location(
    "jaxml_bench_oneshot_scoring", ROOT / "benchmarks" / "oneshot_scoring.py"
  )
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.mark.slow  # end to end
def test_oneshot_scoring_quick(tmp_path):
  bench = _load()
  out = tmp_path / "oneshot.json"
  payload = bench.main(["--quick", "--out", str(out)])
  assert json.loads(out.read_text()) == payload
  assert payload["supernet"] == "NB201 C 2, N 1, 8 px" and payload["backend"] == "cpu"
  assert [r["k"] for r in payload["records"]] == [1, 2]
  for record in payload["records"]:
    assert set(bench.RECORD_KEYS) <= set(record)
    for key in bench.RECORD_KEYS[1:]:
      assert isinstance(record[key], float) and record[key] > 0, key
    ratio = record["batched_paths_per_s"] / record["single_paths_per_s"]
    assert record["speedup"] == pytest.approx(ratio, rel=1e-6)


def test_oneshot_scoring_refuses_bad_ks():
  with pytest.raises(ConfigError, match="--ks"):
    _load().parse_args(["--ks", "0,8"])
