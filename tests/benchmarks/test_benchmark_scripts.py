"""Smoke tests of the throughput scripts: tiniest settings, JSON schema, CLI errors (no timing)."""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import zipfile

import pytest

from jaxml.errors import ConfigError

ROOT = pathlib.Path(__file__).resolve().parents[2]


def load_script(name: str):
  spec = importlib.util.spec_from_file_location(
    f"jaxml_bench_{name}", ROOT / "benchmarks" / f"{name}.py"
  )
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def check_positive_rates(record: dict, keys) -> None:
  for key in keys:
    assert isinstance(record[key], float) and record[key] > 0, (key, record[key])


def test_train_throughput_quick(tmp_path):
  bench = load_script("train_throughput")
  out = tmp_path / "train.json"
  payload = bench.main(["--quick", "--out", str(out)])
  assert json.loads(out.read_text()) == payload
  (record,) = payload["records"]
  assert set(bench.RECORD_KEYS) <= set(record)
  assert (record["model"], record["batch"], record["dtype"]) == ("tiny_cnn", 8, "float32")
  assert record["backend"] == "cpu" and record["mapping"] == "loop"
  check_positive_rates(record, ("img_per_s", "step_ms", "compile_s"))
  # img/s and step time are two views of the same median.
  assert record["img_per_s"] == pytest.approx(8e3 / record["step_ms"], rel=1e-2)


@pytest.mark.slow  # end to end
def test_population_throughput_quick_on_two_devices(tmp_path):
  """A fresh process (--devices must precede JAX's initialisation): shard_map over 2 devices."""
  bench = load_script("population_throughput")
  out = tmp_path / "population.json"
  cmd = [
    sys.executable,
    str(ROOT / "benchmarks" / "population_throughput.py"),
    "--quick",
    "--devices",
    "2",
    "--mappings",
    "vmap",
    "--out",
    str(out),
  ]
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  payload = json.loads(out.read_text())
  assert payload["auto_mapping"] == "loop" and payload["backend"] == "cpu"
  (record,) = payload["records"]
  assert set(bench.RECORD_KEYS) <= set(record)
  assert (record["k"], record["mapping"], record["num_devices"]) == (2, "vmap", 2)
  assert record["mesh"] == {"copy": 2, "data": 1}
  check_positive_rates(
    record, ("img_per_s", "sequential_img_per_s", "ratio", "cpu_ratio", "compile_s")
  )
  assert record["ratio"] == pytest.approx(
    record["img_per_s"] / record["sequential_img_per_s"], rel=1e-2
  )
  assert "| quick | 2 | vmap |" in proc.stdout


def test_cpu_caps_on_big_models_only():
  bench = load_script("population_throughput")
  args = bench.parse_args([])
  assert bench.model_ks("resnet20", args, "cpu") == ([1, 2, 4, 8], [16, 32])
  assert bench.model_ks("resnet18", args, "cpu") == ([1, 2], [4, 8, 16, 32])
  assert bench.model_ks("tiny", args, "cpu") == ([1, 2, 4, 8, 16, 32], [])
  assert bench.model_ks("resnet20", args, "gpu") == ([1, 2, 4, 8, 16, 32], [])
  lifted = bench.parse_args(["--cpu_max_k", "0"])
  assert bench.model_ks("resnet20", lifted, "cpu") == ([1, 2, 4, 8, 16, 32], [])
  assert bench.model_ks("resnet18", bench.parse_args(["--cpu_max_k", "4"]), "cpu")[0] == [1, 2, 4]


@pytest.mark.parametrize(
  "script, argv",
  [
    ("population_throughput", ["--devices", "2"]),  # JAX already initialised in pytest
    ("population_throughput", ["--mappings", "pmap"]),
    ("population_throughput", ["--models", "resnet50"]),
    ("train_throughput", ["--dtypes", "float16"]),
    ("train_throughput", ["--models", "resnet7"]),
  ],
)
def test_bad_arguments_raise_config_error(script, argv):
  import jax

  jax.devices()  # make sure the backend is initialised, as in a long pytest session
  with pytest.raises(ConfigError):
    load_script(script).main(argv)


@pytest.mark.slow  # end to end
def test_architecture_builds_quick_with_a_stub_network(tmp_path, monkeypatch):
  """The array-vs-fixed comparison end to end, through the production Engine, with the NB201
  network replaced by a tiny encoding-aware MLP (the NB201 compiles alone take ~1 min on 2 CPU
  cores; the network and the population of cells are tested in tests/test_architectures.py)."""
  import flax.linen as nn
  import jax.numpy as jnp

  class StubCell(nn.Module):
    """Logits scaled by 1 + sum(encoding): an array build (encoding input) or a fixed cell."""

    arch: tuple[int, ...] | None = None

    @nn.compact
    def __call__(self, x, encoding=None, train: bool = False):
      del train
      enc = jnp.asarray(self.arch if encoding is None else encoding, jnp.float32)
      return nn.Dense(10)(x.reshape(x.shape[0], -1)) * (1.0 + jnp.sum(enc) / 24.0)

  bench = load_script("architecture_builds")
  stub = lambda args, cell=None: StubCell(None if cell is None else tuple(int(v) for v in cell))
  monkeypatch.setattr(bench, "nb201_model", stub)
  out = tmp_path / "architectures.json"
  payload = bench.main(["--quick", "--epochs", "1,5", "--out", str(out)])
  assert json.loads(out.read_text()) == payload
  records = {(r["build"], r["mapping"]): r for r in payload["records"]}
  assert set(records) == {("array", "loop"), ("array", "vmap"), ("fixed", "loop")}
  for r in records.values():
    assert set(bench.RECORD_KEYS) <= set(r)
    assert r["k"] == 2 and r["backend"] == "cpu" and r["fast_compile"] is True
    assert len(set(r["cells"])) == 2
    check_positive_rates(r, ("img_per_s", "step_ms", "compile_s", "init_s"))
    # img/s counts the K copies' images of one round; totals project compile + init + steps.
    assert r["img_per_s"] == pytest.approx(2 * 4e3 / r["step_ms"], rel=1e-2)
    steps = r["steps_per_epoch"] * r["step_ms"] / 1e3
    assert r["total_s"]["5"] == pytest.approx(r["compile_s"] + r["init_s"] + 5 * steps, rel=1e-2)
  assert records[("array", "loop")]["compiles"] == 1 and records[("fixed", "loop")]["compiles"] == 2
  assert set(payload["winners"]) == {"1", "5"}


@pytest.mark.parametrize(
  "argv", [["--mappings", "pmap"], ["--k", "0"], ["--epochs", "0"], ["--image", "10"]]
)
def test_architecture_builds_bad_arguments(argv):
  with pytest.raises(ConfigError):
    load_script("architecture_builds").main(argv)


@pytest.mark.slow  # end to end
def test_gpu_suite_smoke_runs_every_part(tmp_path, tiny_cifar_dir):
  """The GPU suite at toy size on the CPU: every part records, JSON and markdown agree."""
  suite = load_script("gpu_suite")
  out = tmp_path / "suite"
  argv = ["--smoke", "--out", str(out), "--data_dir", str(tiny_cifar_dir), "--peak_tflops", "1"]
  payload = suite.main(argv)
  assert json.loads((out / "gpu_suite.json").read_text()) == payload
  records = payload["records"]
  assert payload["notes"] == [] and all(records[part] for part in suite.PARTS)
  (aug,) = records["augment"]
  assert aug["pairs"] == 1296 and aug["img_per_s"] > 0
  (train,) = records["train"]
  assert train["gflop_per_img"] > 0 and 0 < train["mfu"] == pytest.approx(
    train["tflop_per_s"], rel=0.02
  )  # a 1 TFLOP/s peak: MFU is the achieved TFLOP/s
  assert {(r["k"], r["mapping"]) for r in records["population"]} == {(2, "vmap"), (2, "loop")}
  runs = {r["run"]: r for r in records["ohl"]}
  assert set(runs) == {"baseline", "ohl", "frozen"} and runs["baseline"]["wall_over_baseline"] == 1
  assert runs["ohl"]["copies"] == 2 and 0 <= runs["ohl"]["test_accuracy"] <= 1
  assert "experiments/ohl/cifar10_resnet18.py:frozen" in runs["frozen"]["command"]
  table = (out / "gpu_suite.md").read_text()
  assert "| frozen | 2 |" in table and "| tiny_cnn | bfloat16 | 8 |" in table


def test_gpu_suite_prepares_a_stratified_subset(tmp_path):
  suite = load_script("gpu_suite")
  src = tmp_path / "src" / "cifar10"
  src.mkdir(parents=True)
  with zipfile.ZipFile(src / "train.zip", "w") as zf:
    for c in ("cat", "dog"):
      for i in range(5):
        zf.writestr(f"{c}/{i:04d}.jpg", f"{c}{i}".encode())
  (src / "test.zip").write_bytes(b"test set")
  suite.main(
    ["--prepare_data", str(tmp_path / "dst"), "--train_per_class", "2", "--data_dir", str(src)]
  )
  with zipfile.ZipFile(tmp_path / "dst" / "train.zip") as zf:
    assert sorted(zf.namelist()) == ["cat/0000.jpg", "cat/0001.jpg", "dog/0000.jpg", "dog/0001.jpg"]
    assert zf.read("dog/0001.jpg") == b"dog1"
  assert (tmp_path / "dst" / "test.zip").read_bytes() == b"test set"


def test_gpu_suite_rejects_bad_arguments():
  suite = load_script("gpu_suite")
  with pytest.raises(ConfigError, match="unknown part"):
    suite.parse_args(["--parts", "train,speed"])


@pytest.mark.slow  # end to end
def test_population_scaling_over_two_virtual_devices(tmp_path):
  """A fresh process (virtual devices must precede JAX's initialisation): 1 then 2 devices."""
  out = tmp_path / "scaling.json"
  script = ROOT / "benchmarks" / "population_scaling.py"
  cmd = [sys.executable, str(script), "--cpu_devices", "2", "--model", "quick", "--k", "2"]
  cmd += ["--device_counts", "1,2", "--steps", "1", "--seconds", "0", "--windows", "1"]
  cmd += ["--out", str(out)]
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  # The refused run starts first and runs beside the good one (both mostly import and compile).
  bad = subprocess.Popen(
    [sys.executable, str(script), "--cpu_devices", "2", "--device_counts", "4"],
    env=env,
    cwd=ROOT,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
  )
  subprocess.run(cmd, check=True, env=env, cwd=ROOT, capture_output=True, timeout=300)
  payload = json.loads(out.read_text())
  one, two = payload["records"]
  assert one["mesh"] == {"copy": 1, "data": 1} and one["speedup"] == 1.0
  assert two["mesh"] == {"copy": 2, "data": 1} and two["img_per_s"] > 0
  assert two["efficiency"] == pytest.approx(two["speedup"] / 2, abs=1e-3)
  _, bad_err = bad.communicate(timeout=300)
  assert bad.returncode == 1 and "only 2 devices" in bad_err
