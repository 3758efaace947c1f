"""DARTS / GDAS: the second-order architecture gradient, the controller, config refusals, and a
tiny NAS-Bench-201 search end to end with kill / resume equality."""

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from train_fixtures import REPO_ROOT, final_params, run_killed_after_first_save, set_path

from jaxml import config_cli, main
from jaxml.errors import ConfigError
from jaxml.methods import darts
from jaxml.nasbench import nb201
from jaxml.population import CopyState
from jaxml.search import bilevel
from jaxml.search.bilevel import unrolled_alpha_grad
from jaxml.spaces import NB201Space
from jaxml.spaces import nb201_encoding as E
from jaxml.training import StepInputs
from jaxml.trunks import Keep, TrunkReport

# End-to-end runs are marked `slow` one by one (CI runs them once, after the fast tier); the
# pure functions, toy steps and config refusals here are fast-tier tests.

NB201_CONFIG = REPO_ROOT / "experiments" / "darts" / "nb201_cifar10.py"
DARTS_CONFIG = REPO_ROOT / "experiments" / "darts" / "darts_cifar10.py"


def _tiny_problem():
  """A smooth bilevel toy: weights W [3, 3] (in a dict, as params are pytrees), alpha [3]."""
  rng = np.random.default_rng(0)
  y1, y2 = (jnp.asarray(rng.normal(size=3)) for _ in range(2))

  def train_loss(w, a):
    h = jax.nn.softmax(a)
    return jnp.sum((w["W"] @ h - y1) ** 2) + 0.1 * jnp.sum(jnp.sin(w["W"]))

  def val_loss(w, a):
    h = jax.nn.softmax(a)
    return jnp.sum((jnp.tanh(w["W"]) @ h - y2) ** 2) + 0.05 * jnp.sum(a**2)

  w = {"W": jnp.asarray(rng.normal(size=(3, 3)))}
  return train_loss, val_loss, w, jnp.asarray(rng.normal(size=3))


def test_second_order_gradient_matches_finite_differences():
  """DARTS eq. 7-8 (finite-difference Hessian-vector product) against the exact gradient of
  alpha -> L_val(w - xi grad_w L_train(w, alpha), alpha), itself checked by central differences."""
  xi = 0.1
  with jax.enable_x64(True):
    train_loss, val_loss, w, alpha = _tiny_problem()

    def unrolled(a):
      g = jax.grad(train_loss)(w, a)
      return val_loss(jax.tree.map(lambda p, q: p - xi * q, w, g), a)

    exact = jax.jit(jax.grad(unrolled))(alpha)
    h = 1e-5
    shifts = jnp.asarray(np.concatenate([np.eye(3), -np.eye(3)]) * h)
    values = jax.jit(jax.vmap(unrolled))(alpha + shifts)
    numeric = (values[:3] - values[3:]) / (2 * h)
    np.testing.assert_allclose(exact, numeric, rtol=1e-6, atol=1e-8)
    darts_grad = jax.jit(unrolled_alpha_grad, static_argnums=(0, 1))(
      train_loss, val_loss, w, alpha, xi
    )
    np.testing.assert_allclose(darts_grad, exact, rtol=1e-3, atol=1e-6)
    first_order = jax.grad(val_loss, argnums=1)(w, alpha)
    assert np.abs(np.asarray(first_order - exact)).max() > 1e-2  # the xi term matters here
  # float32 (as in training): the finite difference still holds to ~1e-3.
  train_loss, val_loss, w, alpha = _tiny_problem()
  w32 = jax.tree.map(lambda x: x.astype(jnp.float32), w)
  g32 = jax.jit(unrolled_alpha_grad, static_argnums=(0, 1))(
    train_loss, val_loss, w32, alpha.astype(jnp.float32), xi
  )
  np.testing.assert_allclose(g32, exact, rtol=2e-2, atol=1e-4)


class _ToyNet(nn.Module):
  """A relaxed 'network' without convolutions: per-op linear maps of pooled pixels, mixed."""

  @nn.compact
  def __call__(self, x, train: bool = False, weights=None):
    h = jnp.mean(x, axis=(1, 2))
    outs = jnp.stack([nn.Dense(10, name=f"op{o}")(h) for o in range(3)], 0)
    return jnp.tensordot(weights[0], outs, axes=1)


def _toy_step(order, lr, aux_skip=None):
  model = bilevel.Supernet(_ToyNet(), (1, 3), 0.5)
  # Plain SGD on alpha: Adam's first step is lr * sign(g), blind to the xi term's size.
  w_tx, a_tx = optax.sgd(lr, momentum=0.9), optax.sgd(0.1)
  aug = ml_collections.ConfigDict({"crop": False, "flip": False, "cutout": 0})
  step = bilevel.make_bilevel_step(
    model,
    w_tx,
    a_tx,
    lambda count: lr,
    order=order,
    sampling="softmax",
    batch_size=4,
    num_classes=10,
    augment=aug,
    resolution=4,
    aux_skip_index=None if aux_skip is None else 1,
  )
  variables = model.init(jax.random.key(0), jnp.zeros((1, 4, 4, 3)))
  params = variables["params"]
  state = CopyState(
    step=jnp.zeros((), jnp.int32),
    params=params,
    batch_stats={},
    opt_state=bilevel.split_optimizer(w_tx, a_tx).init(params),
    rng=jax.random.key_data(jax.random.key(1)),
    aux={"alpha": jnp.zeros((1, 3))},
  )
  rng = np.random.default_rng(0)
  images = jnp.asarray(rng.integers(0, 255, (8, 4, 4, 3)), jnp.uint8)
  labels = jnp.asarray(rng.integers(0, 10, 8), jnp.int32)
  inputs = StepInputs(
    hparams={"darts": {"tau": jnp.float32(1.0), "aux_skip": jnp.float32(aux_skip or 0.0)}},
    shared={"alpha_order": jnp.arange(8)},
    images=images[:4],
    labels=labels[:4],
    order=jnp.arange(4),
    step=jnp.int32(0),
  )
  new, metrics = jax.jit(step)(state, inputs, (images[4:], labels[4:]))
  return np.asarray(new.params["alpha"]), new, metrics


def test_second_order_step_reduces_to_first_order_at_zero_learning_rate():
  """eq. 7-8 with xi = 0 is the first-order gradient; with xi > 0 the alpha step differs."""
  a1, s1, m1 = _toy_step(1, 0.0)
  a2, s2, _ = _toy_step(2, 0.0)
  np.testing.assert_allclose(a2, a1, rtol=1e-5, atol=1e-7)
  np.testing.assert_array_equal(np.asarray(s1.aux["alpha"]), a1)  # the report reads aux
  assert np.isfinite(float(m1["loss"])) and int(s1.step) == 1
  b1, _, _ = _toy_step(1, 0.5)
  b2, _, _ = _toy_step(2, 0.5)
  assert np.abs(b2 - b1).max() > 1e-6


def test_aux_skip_adds_beta_to_the_skip_weight_and_decays_to_zero():
  """DARTS-: beta = 0 is plain DARTS; beta > 0 changes both steps; beta falls linearly to 0."""
  plain, _, _ = _toy_step(1, 0.1)
  off, _, _ = _toy_step(1, 0.1, aux_skip=0.0)
  on, _, _ = _toy_step(1, 0.1, aux_skip=0.7)
  np.testing.assert_allclose(off, plain, rtol=1e-6)
  assert np.abs(on - plain).max() > 1e-5
  d = darts.darts_config(aux_skip=1.0)
  assert [bilevel.aux_skip_at(d, e, 4) for e in range(5)] == [1.0, 0.75, 0.5, 0.25, 0.0]
  assert bilevel.aux_skip_at(darts.darts_config(), 0, 4) == 0.0


def test_param_free_share_counts_skip_pool_and_none():
  space = NB201Space(4, 1, 10, 16)  # ops: none, skip, conv1x1, conv3x3, avg_pool
  derived = np.array([[3, 3, 3, 3, 3, 3], [1, 4, 1, 2, 3, 0], [1, 1, 1, 4, 4, 4]])
  np.testing.assert_allclose(darts.param_free_share(space, derived), [0.0, 4 / 6, 1.0])


@pytest.fixture(scope="module")
def table_dir(tmp_path_factory):
  """A synthetic table: accuracy = 30 + 10 * (number of 3x3 convs) + a unique small jitter."""
  encs = E.enumerate_all()
  jitter = np.random.default_rng(0).permutation(15625) / 15625
  acc = 30 + 10 * (encs == 3).sum(1) + jitter
  d = tmp_path_factory.mktemp("nb201_table")
  (d / "nasbench201").mkdir()
  nb201.write_csv(d / "nasbench201" / nb201.FILENAME, np.stack([acc, acc, acc]))
  return str(d), acc


def test_controller_derives_cells_and_looks_them_up(table_dir):
  d, acc = table_dir
  config = config_cli.load_config_file(f"{NB201_CONFIG}:smoke")
  space = NB201Space(4, 1, 10, 16)
  ctrl = darts.DartsController(config, space, nb201.load(d), num_epochs=2, num_alpha=10)
  state, hparams, shared = ctrl.ask(ctrl.init(None), jax.random.key(0))
  assert hparams["darts"]["tau"].shape == (2,)
  assert sorted(shared["alpha_order"].tolist()) == list(range(10))
  alpha = np.zeros((2, 6, 5), np.float32)
  alpha[:, :, 0] = 5.0  # `none` strongest everywhere: excluded from the derived cell
  alpha[0, :, 3] = 1.0  # copy 0: all 3x3 convs
  alpha[1, :, 1] = 1.0  # copy 1: all skips
  report = TrunkReport(0, np.zeros(2), np.ones(2, bool), {}, {"alpha": alpha})
  new, action, info = ctrl.tell(state, report)
  assert action == Keep()
  np.testing.assert_array_equal(new["derived"], [[3] * 6, [1] * 6])
  expected = [acc[E.encoding_to_index(np.array([3] * 6))], acc[E.encoding_to_index(np.ones(6))]]
  np.testing.assert_allclose(new["true_acc"], expected, rtol=1e-6)
  assert info["derived"][1] == space.to_string([1] * 6)
  assert info["none_weight_mean"] > 0.9 and int(new["epoch"]) == 1
  assert info["param_free_share_mean"] == pytest.approx(0.5)  # copy 1's cell is all skips
  assert hparams["darts"]["aux_skip"].tolist() == [0.0, 0.0]  # DARTS- off in this config


def test_tau_anneals_from_tau_max_to_tau_min():
  d = darts.darts_config()
  assert [round(bilevel.tau_at(d, e, 3), 6) for e in range(3)] == [10.0, 5.05, 0.1]


def _tiny_config(table, data_dir, cache, **overrides):
  # First order: the second-order step's numerics are checked on toys above and below, and its
  # graph takes minutes to compile on a 2-core CPU.
  c = config_cli.load_config_file(f"{NB201_CONFIG}:smoke,gdas")
  c.model.update(channels=2, cells_per_stage=1)
  c.data.update(
    dir=str(data_dir), cache_dir=str(cache), use_tfds=False, val_size=100, sample_ratio=1.0
  )
  c.data.resolution = 8
  c.darts.table_dir = table
  c.update(batch_size=20, eval_batch_size=50, num_epochs=2.0, checkpoint_every_steps=3)
  c.progress = False
  for k, v in overrides.items():
    set_path(c, k, v)
  return c


@pytest.fixture(scope="module")
def tiny(table_dir, tiny_cifar_dir, tmp_path_factory):
  cache = tmp_path_factory.mktemp("darts_cache")
  return lambda **o: _tiny_config(table_dir[0], tiny_cifar_dir, cache, **o)


@pytest.fixture(scope="module")
def full_run(tiny, tmp_path_factory):
  workdir = tmp_path_factory.mktemp("darts_full")
  return workdir, main.run_experiment(tiny(), str(workdir))


@pytest.mark.slow  # end to end
def test_search_outputs(full_run, table_dir):
  workdir, summary = full_run
  for name in ("summary.json", "trunks.npz", "plots/alphas.png", "metrics.jsonl"):
    assert (workdir / name).exists(), name
  assert json.loads((workdir / "summary.json").read_text())["method"] == "darts"
  assert summary["order"] == 1 and summary["sampling"] == "gumbel" and summary["trunks"] == 2
  with np.load(workdir / "trunks.npz") as f:
    weights, derived, true_acc = f["weights"], f["derived"], f["true_acc"]
  assert weights.shape == (2, 2, 6, 5) and derived.shape == (2, 2, 6)
  np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
  assert np.abs(weights - 0.2).max() > 1e-4  # the alphas moved
  acc = table_dir[1]
  lookup = acc[E.encoding_to_index(derived.reshape(-1, 6))].reshape(2, 2)
  np.testing.assert_allclose(true_acc, lookup, rtol=1e-6)
  np.testing.assert_allclose(summary["final_true_accuracy_per_copy"], lookup[-1], rtol=1e-6)
  assert (derived != 0).all()  # `none` is never derived
  rows = [json.loads(r) for r in (workdir / "metrics.jsonl").read_text().splitlines()]
  taus = [r["darts_tau"] for r in rows if "darts_tau" in r]
  assert taus == pytest.approx([10.0, 0.1])


@pytest.mark.slow  # end to end
def test_killed_run_resumes_to_the_uninterrupted_end(full_run, tiny, tmp_path, monkeypatch):
  workdir_full, summary_full = full_run
  run = lambda: main.run_experiment(tiny(), str(tmp_path))  # noqa: E731
  run_killed_after_first_save(run, monkeypatch)
  summary = run()
  with np.load(tmp_path / "trunks.npz") as a, np.load(workdir_full / "trunks.npz") as b:
    for key in ("weights", "derived", "true_acc", "rewards"):
      np.testing.assert_array_equal(a[key], b[key])
  assert summary["test_accuracy"] == summary_full["test_accuracy"]
  for a, b in zip(final_params(tmp_path), final_params(workdir_full), strict=True):
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
  "overrides, match",
  [
    ({"darts.space": "econas"}, "darts.space"),
    ({"model.name": "resnet20"}, "model.name"),
    ({"model.arch": "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"}, "model.arch"),
    ({"darts.order": 3}, "darts.order"),
    ({"darts.sampling": "uniform"}, "darts.sampling"),
    ({"darts.alpha_lr": 0.0}, "alpha_lr"),
    ({"darts.alpha_b1": 1.0}, "alpha_b1"),
    ({"darts.alpha_b2": -0.1}, "alpha_b2"),
    ({"darts.tau_min": 0.0}, "tau_min"),
    ({"darts.lr_min": 1.0}, "lr_min"),
    ({"data.val_size": 0}, "val_size"),
    ({"darts.dataset": "mnist"}, "darts.dataset"),
    ({"model.dtype": "bfloat16"}, "float32"),
    ({"darts.aux_skip": -1.0}, "aux_skip"),
    ({"darts.aux_skip": 1.0, "darts.sampling": "gumbel"}, "softmax"),
  ],
)
def test_bad_config_is_refused(overrides, match):
  c = config_cli.load_config_file(f"{NB201_CONFIG}:smoke")
  for k, v in overrides.items():
    set_path(c, k, v)
  with pytest.raises(ConfigError, match=match):
    darts.validate_config(c)


def test_experiment_variants():
  cpu = config_cli.load_config_file(f"{NB201_CONFIG}:cpu,second_order")
  assert cpu.darts.order == 2 and cpu.model.cells_per_stage == 1 and cpu.data.resolution == 16
  gdas = config_cli.load_config_file(f"{DARTS_CONFIG}:gdas")
  assert gdas.darts.sampling == "gumbel" and gdas.model.name == "darts_cells"
  assert gdas.model.layers == 8 and gdas.data.val_size == 25000
  with pytest.raises(ConfigError, match="exclude"):
    config_cli.load_config_file(f"{NB201_CONFIG}:smoke,cpu")
