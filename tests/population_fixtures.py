"""Tiny population set-up shared by the population tests and their subprocess worker.

It steps the production engine (`jaxml.engine.Engine`); only the initial keys are chosen here, so
that copy i of a K-copy population can be re-run alone (K = 1 with copy i's keys).
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxml import configs, training
from jaxml.engine import Engine
from jaxml.models import get_model
from jaxml.population import Population

NUM_CLASSES = 4
IMAGE = 8
BATCH = 8


def tiny_data(n: int = 32, seed: int = 0):
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 256, (n, IMAGE, IMAGE, 3), dtype=np.uint8)
  labels = rng.integers(0, NUM_CLASSES, (n,)).astype(np.int32)
  return images, labels


def augment_config(random: bool = True):
  return ml_collections.ConfigDict({"crop": random, "flip": random, "cutout": 0})


class TinyMLP(nn.Module):
  """No BatchNorm: a data-parallel step equals the single-device step up to float sums."""

  @nn.compact
  def __call__(self, x, train: bool = False):
    del train
    x = nn.relu(nn.Dense(16)(x.reshape(x.shape[0], -1)))
    return nn.Dense(NUM_CLASSES)(x)


def make_engine(
  pop,
  lr=0.05,
  same_batch=True,
  seed=0,
  model="tiny_cnn",
  random_augment=True,
  loss_fn=None,
  eval_sets=None,
):
  """The engine for a tiny CNN (or MLP, or a given Flax module) on `tiny_data`, SGD momentum 0.9
  at a constant lr; `loss_fn` replaces cross-entropy (a method's hook); `eval_sets` replaces
  {'val': the train images}."""
  if isinstance(model, str):
    model = TinyMLP() if model == "mlp" else get_model(model, NUM_CLASSES, width=4)
  optim = configs.optim_config(lr=lr, nesterov=False, weight_decay=0.0, schedule="constant")
  tx = training.make_optimizer(optim, lr)
  data = tiny_data()
  return Engine(
    pop,
    model,
    tx,
    train=data,
    eval_sets=eval_sets or {"val": data},
    batch_size=BATCH,
    eval_batch_size=BATCH,
    num_classes=NUM_CLASSES,
    resolution=IMAGE,
    dtype=jnp.float32,
    augment=augment_config(random_augment),
    same_batch=same_batch,
    seed=seed,
    loss_fn=loss_fn,
  )


def init_keys(size: int, seed: int = 0):
  """(param key data, rng key data) per copy (rbg weights, as `Engine.init_population`)."""
  pkeys = np.stack([jax.random.key_data(training.param_key(seed * 100 + i)) for i in range(size)])
  rkeys = jax.random.split(jax.random.key(seed), size)
  return pkeys, np.asarray(jax.random.key_data(rkeys))


def init_population(engine, keys, hparams=None):
  """Copy i initialised from (param key i, rng key i)."""
  return engine.init_from_keys(*keys, hparams)


@functools.cache
def _shared_engine(size, mapping, same_batch, seed, options):
  return make_engine(Population(size, mapping), same_batch=same_batch, seed=seed, **dict(options))


def run_population(
  pop, steps=3, seed=0, lr_scales=None, keys=None, per_copy_orders=False, **engine_kwargs
):
  """Inits K copies (copy i from key i), trains `steps` steps, evaluates on the train images.

  Engines are shared between calls with the same layout and options (`_shared_engine`), so the
  tests trace and compile each mapped step once, not once per call.
  """
  options = tuple(sorted(engine_kwargs.items()))
  engine = _shared_engine(pop.size, pop.mapping, not per_copy_orders, seed, options)
  state = init_population(engine, init_keys(pop.size, seed) if keys is None else keys)
  hp = {} if lr_scales is None else {"optim": {"lr_scale": np.asarray(lr_scales, np.float32)}}
  hp = pop.put_copies(hp)
  metrics = None
  for s in range(steps):
    state, metrics = engine.step(state, hp, {}, s)
  return state, metrics, engine.evaluate(state, "val")
