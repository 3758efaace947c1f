"""Helpers for end-to-end training tests: a tiny CIFAR-10 copy on disk and config editing.

A plain module (import it as `from train_fixtures import ...`; tests/ is on sys.path), because
`from conftest import ...` picks whichever of the several conftest.py modules was imported last.
tests/conftest.py turns these into fixtures (`tiny_cifar_dir`, `tiny_train_config`).

The format-coverage writers (zip of JPEGs, shuffled pickles) live in tests/data/conftest.py; the
copy here is for end-to-end runs, so its images carry a class signal (a per-class colour) that a
tiny net learns in a few steps.
"""

import pathlib
import pickle

import ml_collections
import numpy as np

from jaxml import config_cli, configs
from jaxml.data import cifar10

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
TRAIN_CONFIG = REPO_ROOT / "experiments" / "baselines" / "cifar10_resnet20.py"
TINY_TRAIN_PER_CLASS, TINY_TEST_PER_CLASS = 20, 10


def tiny_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """uint8 [N, 32, 32, 3]: a fixed colour per class plus uniform noise (learnable, not trivial)."""
  colours = np.random.default_rng(1234).integers(40, 216, size=(cifar10.NUM_CLASSES, 3))
  noise = rng.integers(-40, 41, size=(labels.shape[0], 32, 32, 3))
  return np.clip(colours[labels][:, None, None, :] + noise, 0, 255).astype(np.uint8)


def write_cifar_pickles(
  root: pathlib.Path,
  train_per_class: int = TINY_TRAIN_PER_CLASS,
  test_per_class: int = TINY_TEST_PER_CLASS,
  seed: int = 0,
) -> pathlib.Path:
  """Writes `<root>/cifar-10-batches-py/` (5 train batches + test_batch, original CHW rows).

  `train_per_class` must be a multiple of 5 (it is spread evenly over the 5 train batches).
  Returns the `cifar-10-batches-py` folder.
  """
  if train_per_class % len(cifar10.PICKLE_TRAIN):
    raise ValueError(f"train_per_class={train_per_class} is not a multiple of 5")
  rng = np.random.default_rng(seed)
  d = pathlib.Path(root) / cifar10.PICKLE_DIR
  d.mkdir(parents=True, exist_ok=True)
  per_batch = train_per_class // len(cifar10.PICKLE_TRAIN)
  batches = [(name, per_batch) for name in cifar10.PICKLE_TRAIN]
  batches.append((cifar10.PICKLE_TEST[0], test_per_class))
  for name, per_class in batches:
    labels = rng.permutation(np.repeat(np.arange(cifar10.NUM_CLASSES), per_class))
    rows = tiny_images(labels, rng).transpose(0, 3, 1, 2).reshape(len(labels), 3072)
    batch = {b"batch_label": name.encode(), b"labels": labels.tolist(), b"data": rows}
    (d / name).write_bytes(pickle.dumps(batch, protocol=2))
  return d


def set_path(config: ml_collections.ConfigDict, dotted: str, value) -> None:
  """config['a.b.c'] = value for a dotted key (ConfigDicts from get_config are not locked)."""
  *parents, leaf = dotted.split(".")
  for p in parents:
    config = config[p]
  config[leaf] = value


def tiny_train_config(data_dir, cache_dir, **overrides) -> ml_collections.ConfigDict:
  """A CPU-seconds `method='train'` config: the resnet20 smoke config shrunk to tiny_cnn (width 4)
  at 16x16 on the tiny copy in `data_dir`; 12 steps of 16 images = just over one epoch of the 180
  train images left after a 20-image val hold-out; eval batches of 16 (the last one padded);
  compiled with XLA:CPU's fast-compile options (`population.fast_compile`: the same programs,
  fewer optimisation passes).

  `overrides` use dotted keys: `tiny_train_config(d, c, **{'population.size': 2})`.
  """
  c = config_cli.load_config_file(f"{TRAIN_CONFIG}:smoke")
  c.model = configs.default_model_config("tiny_cnn")
  c.model.width = 4
  c.data.update(
    dir=str(data_dir), cache_dir=str(cache_dir), use_tfds=False, val_size=20, resolution=16
  )
  c.update(
    batch_size=16,
    eval_batch_size=16,
    num_steps=12,
    log_every_steps=2,
    checkpoint_every_steps=4,
    progress=False,
  )
  c.population.fast_compile = True  # XLA:CPU compile time dominates a 12-step run
  for key, value in overrides.items():
    set_path(c, key, value)
  return c


class Killed(Exception):
  """Raised by `run_killed_after_first_save` in place of a SIGKILL."""


def run_killed_after_first_save(run, monkeypatch) -> None:
  """Calls `run()` (a trainer) and kills it right after its first checkpoint is written."""
  import pytest

  from jaxml import experiment

  original = experiment.PopulationRun.save
  calls = {"n": 0}

  def save_then_die(self, step, state, metadata):
    original(self, step, state, metadata)
    calls["n"] += 1
    if calls["n"] == 1:
      raise Killed()

  monkeypatch.setattr(experiment.PopulationRun, "save", save_then_die)
  with pytest.raises(Killed):
    run()
  monkeypatch.setattr(experiment.PopulationRun, "save", original)


def final_params(workdir) -> list[np.ndarray]:
  """Leaves of the last checkpoint's population params (restored against its own structure)."""
  import jax
  import orbax.checkpoint as ocp

  path = pathlib.Path(workdir) / "checkpoints"
  step = max(int(p.name) for p in path.iterdir() if p.name.isdigit())
  restored = ocp.StandardCheckpointer().restore(path / str(step) / "state")
  return [np.asarray(x) for x in jax.tree.leaves(restored["pop"]["params"])]


def tiny_method_config(experiment: str, data_dir, cache_dir, **overrides):
  """An experiment file's config (`path:arg`) shrunk for end-to-end method tests: tiny_cnn width 4
  at 16x16 on the tiny copy in `data_dir` (20 val images), 12 steps of 8, two copies, with
  `population.fast_compile`. Dotted `overrides` are applied last."""
  c = config_cli.load_config_file(experiment)
  c.model = configs.default_model_config("tiny_cnn")
  c.model.width = 4
  c.data.update(
    dir=str(data_dir),
    cache_dir=str(cache_dir),
    use_tfds=False,
    val_size=20,
    sample_ratio=1.0,
    resolution=16,
  )
  c.update(batch_size=8, eval_batch_size=20, num_steps=12, log_every_steps=2, progress=False)
  c.population.update(size=2, fast_compile=True)  # XLA:CPU compiles dominate a 12-step run
  for key, value in overrides.items():
    set_path(c, key, value)
  return c


def run_stopped_by_signal(run, monkeypatch, at_step: int, signum: int):
  """Calls `run()` and sends this process `signum` while train step `at_step` (0-based) runs,
  as a cluster's SIGTERM or a user's Ctrl-C would; returns the `Preempted` the run ended with."""
  import os

  import pytest

  from jaxml import engine, preemption

  original = engine.Engine.step

  def step_then_signal(self, pop, hparams, shared, step):
    out = original(self, pop, hparams, shared, step)
    if step == at_step - 1:  # the step that ends at `at_step` is in flight
      os.kill(os.getpid(), signum)
    return out

  monkeypatch.setattr(engine.Engine, "step", step_then_signal)
  with pytest.raises(preemption.Preempted) as err:
    run()
  monkeypatch.setattr(engine.Engine, "step", original)
  return err.value


def write_conv_count_table(directory: pathlib.Path) -> np.ndarray:
  """A synthetic NAS-Bench-201 table under `directory`: accuracy = 30 + 10 * (number of 3x3
  convs) + a unique small jitter, so every cell has its own rank. Returns the accuracies."""
  from jaxml.nasbench import nb201
  from jaxml.spaces import nb201_encoding

  encs = nb201_encoding.enumerate_all()
  acc = 30 + 10 * (encs == 3).sum(1) + np.random.default_rng(0).permutation(15625) / 15625
  (directory / "nasbench201").mkdir()
  nb201.write_csv(directory / "nasbench201" / nb201.FILENAME, np.stack([acc, acc, acc]))
  return acc
