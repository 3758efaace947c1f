"""One copy's train step (`training.make_train_step`) on a fixed batch, without the engine."""

import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from jaxml import configs, training
from jaxml.errors import ConfigError
from jaxml.models import get_model


def test_one_step_decreases_the_loss_on_a_fixed_batch(tiny_images):
  batch = 16
  labels = np.arange(batch) % 10
  images = jnp.asarray(tiny_images(labels, np.random.default_rng(0)))
  labels = jnp.asarray(labels, jnp.int32)
  model = get_model("tiny_cnn", 10, width=4)
  optim = configs.optim_config(lr=0.05, schedule="constant")
  tx = training.make_optimizer(optim, training.make_lr_schedule(optim, 1, 10))
  no_aug = ml_collections.ConfigDict({"crop": False, "flip": False, "cutout": 0})
  step_fn = jax.jit(
    training.make_train_step(
      model,
      tx,
      batch_size=batch,
      num_classes=10,
      augment=no_aug,
      resolution=16,
      dtype=jnp.float32,
    )
  )
  state = training.init_copy(model, tx, jax.random.key(0), jax.random.key(1), (16, 16, 3))
  order = jnp.arange(batch, dtype=jnp.int32)  # one step per epoch: always this batch
  step0 = jnp.asarray(0, jnp.int32)

  inputs = training.StepInputs({}, {}, images, labels, order, step0)
  new, m0 = step_fn(state, inputs)
  _, m1 = step_fn(new, inputs)  # same batch, same randomness
  # The reported loss is the one the gradient was taken of, i.e. before the update.
  assert float(m1["loss"]) < float(m0["loss"])
  assert int(new.step) == 1
  chex.assert_trees_all_equal_shapes_and_dtypes(new.params, state.params)
  for before, after in zip(jax.tree.leaves(state.params), jax.tree.leaves(new.params), strict=True):
    assert not np.array_equal(before, after)
  chex.assert_trees_all_equal(new.rng, state.rng)  # keys are folded with the step, never consumed


def test_lr_scale_is_an_injected_per_copy_hyper_parameter():
  """hparams['optim']['lr_scale'] scales the scheduled rate; 1 is exactly the unscaled step."""
  optim = configs.optim_config(lr=0.1, schedule="constant", weight_decay=0.0)
  tx = training.make_optimizer(optim, 0.1)
  params = {"w": jnp.ones((3,))}
  grads = {"w": jnp.asarray([1.0, -2.0, 0.5])}
  state = tx.init(params)
  assert float(state.hyperparams["lr_scale"]) == 1.0
  plain, _ = optax.sgd(0.1, momentum=0.9, nesterov=True).update(
    grads, optax.sgd(0.1, momentum=0.9, nesterov=True).init(params)
  )
  unit, _ = tx.update(grads, state, params)
  chex.assert_trees_all_equal(unit, plain)  # bit for bit
  half, _ = tx.update(grads, training.set_optimizer_hparams(state, {"lr_scale": 0.5}), params)
  chex.assert_trees_all_close(half, jax.tree.map(lambda u: 0.5 * u, plain), rtol=1e-6)
  with pytest.raises(ConfigError, match="not injected"):
    training.set_optimizer_hparams(state, {"momentum": 0.5})
