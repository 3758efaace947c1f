"""Forward passes of the backbones: shapes, dtypes, BN train/eval, dropout, one SGD step.

Real computation only on tiny models and inputs; the big nets go through jax.eval_shape. Keys use
the 'rbg' PRNG, whose random ops compile much faster than threefry's on a CPU.
"""

import chex
import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxml.models import get_model
from jaxml.models.layers import conv
from jaxml.models.resnet import pad_shortcut

TINY = {
  "tiny_cnn": {"width": 4},
  "cifar_resnet": {"depth": 8, "width": 4},
  "wrn": {"depth": 10, "width": 1, "dropout": 0.5},
}


def _key(seed):
  return jax.random.key(seed, impl="rbg")


def _images(n, hw=8, seed=0):
  return jax.random.normal(_key(seed), (n, hw, hw, 3))


@pytest.fixture(scope="module")
def tiny_variables():
  """One real init per tiny model, shared by the tests (params are float32 for any dtype)."""
  out = {}
  for name, kwargs in TINY.items():
    model = get_model(name, 7, **kwargs)
    out[name] = jax.jit(model.init, static_argnames="train")(_key(1), _images(2), train=False)
  return out


def test_bf16_compute_with_float32_params_and_logits(tiny_variables):
  model = get_model("cifar_resnet", 7, dtype="bfloat16", **TINY["cifar_resnet"])
  variables = tiny_variables["cifar_resnet"]  # a bf16 model has the same float32 params
  assert {p.dtype for p in jax.tree.leaves(variables)} == {jnp.dtype(jnp.float32)}

  @jax.jit
  def run(variables, x):
    train_logits, _ = model.apply(variables, x, train=True, mutable=["batch_stats"])
    eval_logits, inter = model.apply(
      variables, x, train=False, capture_intermediates=True, mutable=["intermediates"]
    )
    return train_logits, eval_logits, inter["intermediates"]

  train_logits, eval_logits, inter = run(variables, _images(2, hw=16))
  for logits in (train_logits, eval_logits):
    chex.assert_shape(logits, (2, 7))
    chex.assert_type(logits, jnp.float32)
    chex.assert_tree_all_finite(logits)
  # The convs and BNs really compute in bfloat16.
  assert inter["stem_conv"]["__call__"][0].dtype == jnp.bfloat16
  assert inter["stage3_block1"]["bn2"]["__call__"][0].dtype == jnp.bfloat16


@pytest.mark.parametrize(
  "name,kwargs",
  [
    ("resnet18", {}),
    ("resnet20", {}),
    ("wrn", {"depth": 28, "width": 10, "dropout": 0.3}),
  ],
)
def test_big_models_shapes_and_dtypes(name, kwargs):
  model = get_model(name, 10, dtype=jnp.bfloat16, **kwargs)
  x = jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32)
  variables = jax.eval_shape(lambda x: model.init(_key(0), x, train=False), x)
  logits, new_vars = jax.eval_shape(
    lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"], rngs={"dropout": _key(1)}),
    variables,
    x,
  )
  assert logits.shape == (2, 10) and logits.dtype == jnp.float32
  assert jax.tree.structure(new_vars["batch_stats"]) == jax.tree.structure(variables["batch_stats"])


def test_batch_norm_train_updates_stats_and_eval_does_not(tiny_variables):
  model = get_model("tiny_cnn", 7, **TINY["tiny_cnn"])
  x = _images(4) * 3.0 + 1.0
  variables = tiny_variables["tiny_cnn"]

  @jax.jit
  def run(variables, x):
    train_out, train_upd = model.apply(
      variables,
      x,
      train=True,
      mutable=["batch_stats", "intermediates"],
      capture_intermediates=lambda mdl, _: mdl.name == "conv1",
    )
    eval_out, eval_upd = model.apply(variables, x, train=False, mutable=["batch_stats"])
    single = model.apply(variables, x[:1], train=False)
    return train_out, train_upd, eval_out, eval_upd, single

  train_out, train_upd, eval_out, eval_upd, single = run(variables, x)
  for logits in (train_out, eval_out):
    chex.assert_shape(logits, (4, 7))
    chex.assert_type(logits, jnp.float32)
  old = variables["batch_stats"]["bn1"]
  new = train_upd["batch_stats"]["bn1"]
  # Flax momentum 0.9: running = 0.9 * running + 0.1 * batch (biased variance).
  h = np.asarray(train_upd["intermediates"]["conv1"]["__call__"][0])
  np.testing.assert_allclose(new["mean"], 0.1 * h.mean((0, 1, 2)), rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(new["var"], 0.9 + 0.1 * h.var((0, 1, 2)), rtol=1e-4, atol=1e-6)
  assert not np.allclose(new["mean"], old["mean"])
  chex.assert_trees_all_equal(eval_upd["batch_stats"], variables["batch_stats"])
  # Eval uses running stats, so it treats examples independently; train normalises per batch.
  assert not np.allclose(train_out, eval_out, atol=1e-3)
  np.testing.assert_allclose(single[0], eval_out[0], rtol=1e-5, atol=1e-5)
  # Updated running stats change eval outputs but not train outputs.
  updated = {**variables, "batch_stats": train_upd["batch_stats"]}
  train_out2, _, eval_out2, _, _ = run(updated, x)
  np.testing.assert_allclose(train_out2, train_out, rtol=1e-5, atol=1e-5)
  assert not np.allclose(eval_out2, eval_out, atol=1e-4)


def test_dropout_only_in_train_and_needs_rng(tiny_variables):
  x = _images(2)
  model = get_model("wrn", 7, dtype="bfloat16", **TINY["wrn"])
  variables = tiny_variables["wrn"]

  @jax.jit
  def fwd(variables, x, key):
    train_out = model.apply(
      variables, x, train=True, mutable=["batch_stats"], rngs={"dropout": key}
    )[0]
    return train_out, model.apply(variables, x, train=False, rngs={"dropout": key})

  train_a, eval_a = fwd(variables, x, _key(1))
  train_a2, _ = fwd(variables, x, _key(1))
  train_b, eval_b = fwd(variables, x, _key(2))
  chex.assert_shape([train_a, eval_a], (2, 7))
  chex.assert_type([train_a, eval_a], jnp.float32)
  chex.assert_tree_all_finite([train_a, eval_a])
  np.testing.assert_array_equal(train_a, train_a2)
  assert not np.allclose(train_a, train_b)
  np.testing.assert_array_equal(eval_a, eval_b)
  # Tracing is enough to check rng requirements (eval_shape compiles nothing).
  with pytest.raises(flax.errors.InvalidRngError):
    jax.eval_shape(lambda v: model.apply(v, x, train=True, mutable=["batch_stats"]), variables)
  jax.eval_shape(lambda v: model.apply(v, x, train=False), variables)
  no_drop = get_model("wrn", 7, depth=10, width=1)
  logits, _ = jax.eval_shape(
    lambda v: no_drop.apply(v, x, train=True, mutable=["batch_stats"]), variables
  )
  assert logits.shape == (2, 7)


def test_one_sgd_step_decreases_loss(tiny_variables):
  model = get_model("tiny_cnn", 7, **TINY["tiny_cnn"])
  x = _images(8)
  labels = jax.random.randint(_key(5), (8,), 0, 7)
  variables = tiny_variables["tiny_cnn"]
  tx = optax.sgd(0.05, momentum=0.9)

  def loss_fn(params, batch_stats):
    logits, upd = model.apply(
      {"params": params, "batch_stats": batch_stats}, x, train=True, mutable=["batch_stats"]
    )
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    return loss, upd["batch_stats"]

  @jax.jit
  def step(params, batch_stats, opt_state):
    (loss, new_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, batch_stats)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), new_stats, opt_state, loss

  params, stats = variables["params"], variables["batch_stats"]
  opt_state = tx.init(params)
  params1, stats1, opt_state, loss0 = step(params, stats, opt_state)
  _, _, _, loss1 = step(params1, stats1, opt_state)  # the loss at params1, same compiled fn
  assert np.isfinite(loss0) and loss1 < loss0 - 1e-3
  assert not np.allclose(stats1["bn1"]["mean"], 0.0)


def test_pad_shortcut_is_option_a():
  x = jnp.arange(2 * 4 * 4 * 4, dtype=jnp.float32).reshape(2, 4, 4, 4) + 1.0
  y = pad_shortcut(x, 8, 2)
  chex.assert_shape(y, (2, 2, 2, 8))
  np.testing.assert_array_equal(y[..., 2:6], x[:, ::2, ::2, :])
  np.testing.assert_array_equal(y[..., :2], 0.0)
  np.testing.assert_array_equal(y[..., 6:], 0.0)


def test_stride2_conv_pads_like_torch():
  # A centre-delta 3x3 kernel with torch's padding=1 and stride 2 returns x[::2, ::2], which lines
  # up with the option-A shortcut; flax's 'SAME' would return x[1::2, 1::2].
  layer = conv(1, 3, 2, jnp.float32)
  kernel = jnp.zeros((3, 3, 1, 1)).at[1, 1].set(1.0)
  x = jnp.arange(36, dtype=jnp.float32).reshape(1, 6, 6, 1)
  y = layer.apply({"params": {"kernel": kernel}}, x)
  np.testing.assert_array_equal(y, x[:, ::2, ::2, :])
