"""The reusable population engine: K copies of a model stepping over device-resident data.

`Engine` is what a run, a benchmark and a test all step: the single-copy train and eval steps of
`jaxml.training`, mapped over a `Population` (copies x devices), with the train split and the
eval splits resident on every device and the epoch order derived from a seed. It knows nothing of
configs, run directories or checkpoints (`jaxml.experiment.PopulationRun` builds one from a
config; `benchmarks/common.py` and the tests build one from explicit parts), so the code that is
timed and tested is the code that runs.

Per-copy inputs: `hparams` (leading copy axis) reach the model (`hparams['model']`, e.g. an
architecture encoding per copy), the optimizer (`hparams['optim']`) and the method's hooks; see
`training.StepInputs`. `shared` values are replicated on every device.
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxml import evaluation, training
from jaxml.data import pipeline
from jaxml.errors import ConfigError
from jaxml.population import CopyState, Population, to_host
from jaxml.training import EvalInputs, StepInputs


def init_seed(seed: int, offset: int = 0) -> int:
  """The integer seed of a run's initial weights (`training.param_key`): copy i of a fresh
  population draws from init_seed(seed, offset) + 1 + i (all from init_seed(...) under
  `same_init`); EcoNAS's network n from init_seed(seed, n)."""
  return seed * 7919 + 1000 + offset


class Engine:
  """Mapped train / eval steps of one model for K copies, plus the data they read.

  Args:
    population: the copies' device layout and mapping.
    model: a Flax module called as `model.apply(variables, x, train=..., **hparams['model'])`.
    tx: the optax optimizer of every copy.
    train: (uint8 images [N, H, W, 3], int32 labels [N]) of the train split.
    eval_sets: name -> (images, labels) of each evaluation split (e.g. 'val', 'test').
    batch_size / eval_batch_size: per copy.
    num_classes, resolution, dtype, augment, label_smoothing: see `training.make_train_step`.
    same_batch: all copies read the same batches (else each copy has its own data order).
    seed: the run's seed; the data order and each copy's randomness derive from it.
    augment_fn / loss_fn: the method's hooks (`training.make_train_step`).
    aux_init: a fresh copy's per-copy accumulators (`CopyState.aux`).
    train_step: the single-copy train step `(state, StepInputs, *step_args) -> (state,
      metrics)`; None builds `training.make_train_step` from the arguments above. A method with
      its own update rule passes it here (DARTS's bilevel step).
    step_args: arrays every call of `train_step` gets after its inputs, replicated on every
      device (e.g. DARTS's alpha split).
  """

  def __init__(
    self,
    population: Population,
    model,
    tx,
    *,
    train: tuple[np.ndarray, np.ndarray],
    eval_sets: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    batch_size: int,
    eval_batch_size: int,
    num_classes: int,
    resolution: int,
    dtype=jnp.float32,
    augment: ml_collections.ConfigDict,
    label_smoothing: float = 0.0,
    same_batch: bool = True,
    seed: int = 0,
    augment_fn: Callable | None = None,
    loss_fn: Callable | None = None,
    aux_init: Any = None,
    train_step: Callable | None = None,
    step_args: tuple = (),
  ):
    self.pop = population
    self.model, self.tx = model, tx
    self.batch_size = batch_size
    self.seed = seed
    self.same_batch = same_batch
    self.aux_init = aux_init
    self.input_shape = (resolution, resolution, 3)
    n_train = int(train[1].shape[0])
    self.steps_per_epoch = n_train // batch_size
    if self.steps_per_epoch == 0:
      raise ConfigError(f"batch_size={batch_size} exceeds the {n_train} training images")
    common = dict(
      num_classes=num_classes, resolution=resolution, dtype=dtype, data_axis=population.data_axis
    )
    step_fn = train_step or training.make_train_step(
      model,
      tx,
      batch_size=batch_size,
      augment=augment,
      label_smoothing=label_smoothing,
      augment_fn=augment_fn,
      loss_fn=loss_fn,
      **common,
    )
    # The single-copy steps, and the same mapped over every copy and device.
    self.train_step_one = step_fn
    self.eval_step_one = evaluation.make_eval_step(model, **common)
    in_axes = (0, StepInputs.axes(same_batch), *(None,) * len(step_args))
    self.train_step = population.map(step_fn, in_axes, (0,))
    self.step_args = population.put_replicated(tuple(step_args))
    self.eval_step = population.map(self.eval_step_one, (0, EvalInputs.axes()))
    self._eval_single = population.jit(self.eval_step_one)

    # Device-resident data: uint8 images replicated on every device.
    put = population.put_replicated
    self.train_images, self.train_labels = put(train)
    self.eval_sets = {
      name: put(evaluation.eval_batches(images, labels, eval_batch_size))
      for name, (images, labels) in (eval_sets or {}).items()
      if labels.shape[0]
    }
    data_key = jax.random.fold_in(jax.random.key(seed), 1)
    perm = lambda k, e: pipeline.epoch_permutation(jax.random.wrap_key_data(k), e, n_train)
    if same_batch:
      self.data_keys = put(np.asarray(jax.random.key_data(data_key)))
      self._epoch_order = jax.jit(perm, out_shardings=population.replicated())
    else:
      keys = jax.random.split(data_key, population.size)
      self.data_keys = population.put_copies(np.asarray(jax.random.key_data(keys)))
      self._epoch_order = jax.jit(
        jax.vmap(perm, (0, None)), out_shardings=population.copy_sharding()
      )
    self._order_epoch, self._order = -1, None
    self._init_fns = {}

  @property
  def size(self) -> int:
    return self.pop.size

  def images_per_step(self) -> int:
    return self.pop.size * self.batch_size

  # -- state -------------------------------------------------------------------------------
  def init_population(
    self, same_init: bool = False, hparams: Any = None, seed_offset: int = 0
  ) -> CopyState:
    """K fresh copies: the same initial weights (`same_init`) or one init per copy.

    `hparams['model']` (per copy) is passed to the model's init, so copies of different fixed
    architectures get their own variables. Weights are drawn with the 'rbg' PRNG: XLA:CPU
    compiles a ResNet's threefry-based init ~5x slower (measured 18.8 s vs 3.8 s for a
    ResNet-8). Each copy's own stream (`rng`, for crops, augmentation, dropout) stays threefry.
    """
    k = self.pop.size
    seed = init_seed(self.seed, seed_offset)
    pseeds = [seed] * k if same_init else [seed + 1 + i for i in range(k)]
    pkeys = np.stack([jax.random.key_data(training.param_key(s)) for s in pseeds])
    rkeys = jax.random.split(jax.random.fold_in(jax.random.key(self.seed), 2), k)
    return self.init_from_keys(pkeys, np.asarray(jax.random.key_data(rkeys)), hparams)

  def init_from_keys(self, param_keys, rng_keys, hparams: Any = None) -> CopyState:
    """Copy i initialised from (param_keys[i], rng_keys[i]) (raw key data, rbg / threefry)."""
    inputs = training.model_inputs(hparams or {})
    leaves, treedef = jax.tree.flatten(inputs)
    if treedef not in self._init_fns:  # compiled once per input structure, reused on re-inits

      def init_fn(kp, kr, *input_leaves):
        return training.init_copy(
          self.model,
          self.tx,
          training.wrap_param_key(kp),
          jax.random.wrap_key_data(kr),
          self.input_shape,
          self.aux_init,
          model_inputs=jax.tree.unflatten(treedef, input_leaves),
        )

      self._init_fns[treedef] = self.pop.jit(init_fn)
    leaves = [np.asarray(jax.device_get(x)) for x in leaves]
    return self.pop.init_copies(
      self._init_fns[treedef], np.asarray(param_keys), np.asarray(rng_keys), *leaves
    )

  # -- stepping ----------------------------------------------------------------------------
  def order(self, step: int):
    """The example order of the epoch holding `step` (computed once per epoch)."""
    epoch = step // self.steps_per_epoch
    if epoch != self._order_epoch:
      self._order = self._epoch_order(self.data_keys, jnp.asarray(epoch, jnp.int32))
      self._order_epoch = epoch
    return self._order

  def step_inputs(self, hparams, shared, step: int) -> StepInputs:
    return StepInputs(
      hparams=hparams,
      shared=shared,
      images=self.train_images,
      labels=self.train_labels,
      order=self.order(step),
      step=jnp.asarray(step, jnp.int32),
    )

  def step(self, pop: CopyState, hparams, shared, step: int):
    """One train step of every copy: (new population, per-copy metrics)."""
    return self.train_step(pop, self.step_inputs(hparams, shared, step), *self.step_args)

  def evaluate(self, pop: CopyState, split: str, hparams=None) -> dict[str, np.ndarray]:
    """Per-copy accuracy and loss on `split`, all copies and batches in one compiled call."""
    hparams = self.pop.put_copies(hparams or {})
    return to_host(self.eval_step(pop, EvalInputs(hparams, *self.eval_sets[split])))

  def evaluate_copy(self, pop: CopyState, index: int, split: str, hparams=None) -> dict:
    """Accuracy and loss of copy `index` alone (e.g. the final model once all copies agree):
    floats, and lists for the halves."""
    if self.pop.data_axis is not None or jax.process_count() > 1:
      result = self.evaluate(pop, split, hparams)
      return {k: np.asarray(v[index]).tolist() for k, v in result.items()}
    take = lambda tree: jax.tree.map(lambda x: x[index], tree)
    inputs = EvalInputs(take(hparams or {}), *self.eval_sets[split])
    result = jax.device_get(self._eval_single(take(pop), inputs))
    return {k: np.asarray(v).tolist() for k, v in result.items()}
