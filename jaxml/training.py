"""Single-copy training: optimizer, loss, and the train / eval steps the population engine maps.

The steps are written for ONE copy (DESIGN.md: "write the step for one copy, then vectorise");
`jaxml.population.Population.map` maps them over copies and devices. They read the whole
device-resident split and pick their batch from the integer step (a per-epoch permutation), so
the data-iterator position is the step itself and resumes exactly.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxml.data import pipeline
from jaxml.errors import ConfigError
from jaxml.population import CopyState

SCHEDULES = ("cosine", "step", "constant")
OPTIMIZERS = ("sgd", "lars")


def peak_lr(optim: ml_collections.ConfigDict, batch_size: int | None) -> float:
  """The learning rate the schedule starts its main phase from.

  `optim.lr`, or with `optim.linear_scaling` the linear scaling rule of Goyal et al. 2017 §2.1
  ("when the minibatch size is multiplied by k, multiply the learning rate by k"):
  optim.lr * batch_size / optim.base_batch_size, e.g. lr 0.1 at base 256 -> 1.6 at batch 4096.
  """
  if not optim.get("linear_scaling", False):
    return optim.lr
  if batch_size is None:
    raise ValueError("optim.linear_scaling needs the batch size: pass batch_size=.")
  return optim.lr * batch_size / optim.base_batch_size


def make_lr_schedule(
  optim: ml_collections.ConfigDict,
  steps_per_epoch: int,
  total_steps: int,
  batch_size: int | None = None,
):
  """Warm-up then cosine (to 0) / step (x `decay_factor` at `decay_epochs`) / constant.

  With peak = `peak_lr(optim, batch_size)`, W = round(warmup_epochs * steps_per_epoch) and
  f = `optim.warmup_start_factor`, the rate at step s is peak * (f + (1 - f) * s / W) for s < W
  (gradual warm-up, Goyal et al. §2.2: f = 1/k starts from the small-batch rate, f = 0 from 0),
  then the main schedule starting from peak at step W.
  """
  warmup = int(round(optim.warmup_epochs * steps_per_epoch))
  if optim.schedule not in SCHEDULES:
    raise ConfigError(f"optim.schedule={optim.schedule!r}; valid: {', '.join(SCHEDULES)}")
  lr = peak_lr(optim, batch_size)
  if optim.schedule == "cosine":
    main = optax.cosine_decay_schedule(lr, max(total_steps - warmup, 1))
  elif optim.schedule == "step":
    bounds = {
      int(round(e * steps_per_epoch)) - warmup: optim.decay_factor for e in optim.decay_epochs
    }
    main = optax.piecewise_constant_schedule(lr, bounds)
  else:
    main = optax.constant_schedule(lr)
  if warmup == 0:
    return main
  start = optim.get("warmup_start_factor", 0.0) * lr
  return optax.join_schedules([optax.linear_schedule(start, lr, warmup), main], [warmup])


def lars_mask(params):
  """True for the conv and dense kernels (leaves named 'kernel' with >= 2 dims), False for
  biases and BN scales/offsets: You et al. 2017 adapt the rate of weight matrices; the Goyal et
  al. / MLPerf LARS recipes exclude biases and BN parameters from the trust ratio and from
  weight decay."""

  def is_kernel(path, leaf):
    return getattr(path[-1], "key", None) == "kernel" and leaf.ndim >= 2

  return jax.tree_util.tree_map_with_path(is_kernel, params)


class CorrectedTraceState(NamedTuple):
  trace: Any  # the velocity v (learning rate included, Goyal et al. Eq. 10)
  prev_lr: jax.Array  # the rate of the previous step (0 before the first)
  count: jax.Array


def corrected_trace(learning_rate, decay: float, nesterov: bool = False):
  """Momentum with Goyal et al. 2017 §2.2's momentum correction, for lr-scaled updates.

  The incoming updates are -eta_{t+1} * g (the velocity form, Eq. 10, as in `optax.lars`, whose
  trace follows its learning-rate scaling). The velocity is
  v_{t+1} = decay * (eta_{t+1} / eta_t) * v_t + updates: when the rate changes from eta_t to
  eta_{t+1} the buffer is rescaled by eta_{t+1} / eta_t (the "momentum correction"), which makes
  the run equal to the lr-outside form u_{t+1} = decay * u_t + g, w -= eta_{t+1} u_{t+1} (Eq. 9)
  for any positive schedule. eta_{t+1} = learning_rate(count) is the rate this step's updates
  were scaled by; the ratio is taken as 0 after a step with eta_t = 0, whose velocity is 0.
  Nesterov: the step is updates + decay * v_{t+1} (optax's `trace(nesterov=True)`), which is
  eta_{t+1} (g + decay * u_{t+1}) in the Eq. 9 form.
  """

  def init_fn(params):
    zeros = jax.tree.map(jnp.zeros_like, params)
    return CorrectedTraceState(zeros, jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32))

  def update_fn(updates, state, params=None):
    del params
    lr = jnp.asarray(learning_rate(state.count), jnp.float32)
    ratio = jnp.where(state.prev_lr > 0, lr / jnp.where(state.prev_lr > 0, state.prev_lr, 1), 0)
    scale = decay * ratio
    trace = jax.tree.map(lambda u, v: u + (scale * v).astype(v.dtype), updates, state.trace)
    if nesterov:
      out = jax.tree.map(lambda u, v: u + decay * v, updates, trace)
    else:
      out = trace
    return out, CorrectedTraceState(trace, lr, optax.safe_increment(state.count))

  return optax.GradientTransformation(init_fn, update_fn)


def lars(optim: ml_collections.ConfigDict, lr) -> optax.GradientTransformation:
  """LARS (You et al. 2017) as `optax.lars`, biases and BN parameters masked out of both the
  trust ratio and weight decay (`lars_mask`). With `optim.momentum_correction` the same chain
  (masked L2 weight decay, masked trust ratio, rate scaling) ends in `corrected_trace` instead
  of `optax.trace`."""
  common = dict(
    weight_decay=optim.weight_decay,
    weight_decay_mask=lars_mask,
    trust_coefficient=optim.trust_coefficient,
    eps=optim.trust_eps,
    trust_ratio_mask=lars_mask,
  )
  if not optim.momentum_correction:
    return optax.lars(lr, momentum=optim.momentum, nesterov=optim.nesterov, **common)
  # optax.lars's chain with its final `trace(momentum)` replaced by the corrected one.
  return optax.chain(
    optax.add_decayed_weights(optim.weight_decay, mask=lars_mask),
    optax.masked(
      optax.scale_by_trust_ratio(trust_coefficient=optim.trust_coefficient, eps=optim.trust_eps),
      lars_mask,
    ),
    optax.scale_by_learning_rate(lr),
    corrected_trace(lr, optim.momentum, optim.nesterov),
  )


def make_optimizer(optim: ml_collections.ConfigDict, schedule) -> optax.GradientTransformation:
  """SGD (+Nesterov) with coupled L2 weight decay, as in the papers' PyTorch code, or LARS.

  `optim.optimizer='lars'` is `lars(optim, lr)` (masked trust ratio and weight decay, optional
  momentum correction). SGD keeps its momentum buffer in the lr-outside form (Goyal et al. Eq.
  9), which needs no momentum correction, so `momentum_correction` is refused for it.

  `lr_scale` (default 1) multiplies the scheduled step and is an injected hyper-parameter
  (`optax.inject_hyperparams`): it lives in each copy's optimizer state, so a controller can give
  every copy its own learning rate through `hparams['optim']['lr_scale']` (see
  `set_optimizer_hparams`) while the schedule stays shared.
  """

  schedule = schedule if callable(schedule) else optax.constant_schedule(schedule)
  name = optim.get("optimizer", "sgd")
  if name not in OPTIMIZERS:
    raise ConfigError(f"optim.optimizer={name!r}; valid: {', '.join(OPTIMIZERS)}")
  if name == "sgd" and optim.get("momentum_correction", False):
    raise ConfigError(
      "optim.momentum_correction=True needs optim.optimizer='lars': SGD's momentum buffer "
      "holds gradients (Goyal et al. Eq. 9), already invariant to learning-rate changes"
    )

  def sgd(lr_scale):
    parts = []
    if optim.grad_clip > 0:
      parts.append(optax.clip_by_global_norm(optim.grad_clip))
    # The scale multiplies the scheduled scalar rate, not the updates: an extra elementwise
    # multiply changes XLA's fused multiply-adds, so runs would no longer match bit for bit.
    lr = lambda count: schedule(count) * lr_scale
    if name == "lars":
      parts.append(lars(optim, lr))
      return optax.chain(*parts)
    parts.append(optax.add_decayed_weights(optim.weight_decay))
    parts.append(optax.sgd(lr, momentum=optim.momentum or None, nesterov=optim.nesterov))
    return optax.chain(*parts)

  return optax.inject_hyperparams(sgd)(lr_scale=1.0)


def set_optimizer_hparams(opt_state, values: dict):
  """`opt_state` with its injected hyper-parameters (`optax.inject_hyperparams`) set to `values`.

  A name the optimizer does not inject is an error, never silently ignored.
  """
  if not values:
    return opt_state
  injected = getattr(opt_state, "hyperparams", None)
  unknown = sorted(set(values) - set(injected or {}))
  if unknown:
    raise ConfigError(
      f"per-copy optimizer hyper-parameters {unknown} are not injected by the optimizer "
      f"(injected: {sorted(injected or {})})"
    )
  new = dict(injected)
  for name, value in values.items():
    new[name] = jnp.asarray(value, jnp.asarray(injected[name]).dtype)
  return opt_state._replace(hyperparams=new)


def cross_entropy(logits, labels, num_classes: int, label_smoothing: float = 0.0):
  """Per-example softmax cross-entropy with optional label smoothing."""
  targets = optax.smooth_labels(jax.nn.one_hot(labels, num_classes), label_smoothing)
  return optax.softmax_cross_entropy(logits.astype(jnp.float32), targets)


PATH_STREAM = 0x9A7  # fold_in constant of the train step's 'path' rng (`make_train_step`)
PARAM_PRNG = "rbg"  # fast to compile on XLA:CPU for big inits; see experiment.init_population


def param_key(seed: int) -> jax.Array:
  """The key a copy's initial weights are drawn from."""
  return jax.random.key(seed, impl=PARAM_PRNG)


def wrap_param_key(key_data: jax.Array) -> jax.Array:
  return jax.random.wrap_key_data(key_data, impl=PARAM_PRNG)


def init_copy(
  model, tx, params_key, rng_key, input_shape, aux=None, model_inputs=None
) -> CopyState:
  """A fresh copy: params from `params_key`, its own randomness from `rng_key`.

  `model_inputs` are the copy's extra model arguments (e.g. `{'encoding': enc}` for a search
  space's array build), as the train step passes them.
  """
  variables = model.init(
    {"params": params_key, "dropout": params_key},
    jnp.zeros((1, *input_shape)),
    train=False,
    **(model_inputs or {}),
  )
  params = variables["params"]
  return CopyState(
    step=jnp.zeros((), jnp.int32),
    params=params,
    batch_stats=variables.get("batch_stats", {}),
    opt_state=tx.init(params),
    rng=jax.random.key_data(rng_key),
    aux={} if aux is None else aux,
  )


@flax.struct.dataclass
class StepInputs:
  """Everything a train step reads besides the copy's own state.

  Attributes:
    hparams: per-copy values a controller asked for (leading copy axis K). Two keys have a
      meaning for every step: `hparams['model']`, keyword arguments of the model's `__call__`
      (per-copy model inputs, e.g. `{'encoding': int32[K, 6]}`: K different architectures of
      one space's array build in one population), and `hparams['optim']`, values of the
      optimizer's injected hyper-parameters (e.g. `{'lr_scale': f32[K]}`). Other keys are for
      the method's `augment_fn` / `loss_fn`.
    shared: values shared by every copy (e.g. OHL's policy logits).
    images, labels: the device-resident train split (uint8 NHWC, int32).
    order: the epoch's example order: [N] when all copies read the same batches, [K, N] else.
    step: the global int32 step; the batch and every random draw derive from it.
  """

  hparams: Any
  shared: Any
  images: jax.Array
  labels: jax.Array
  order: jax.Array
  step: jax.Array

  @staticmethod
  def axes(same_batch: bool = True) -> "StepInputs":
    """The `in_axes` prefix of `StepInputs` for `Population.map`: 0 = per copy, None = shared."""
    return StepInputs(
      hparams=0, shared=None, images=None, labels=None, order=None if same_batch else 0, step=None
    )


@flax.struct.dataclass
class EvalInputs:
  """What an eval step reads: per-copy `hparams` (for `hparams['model']`) and a padded split
  (`eval_batches`: images [nb, bs, ...], labels [nb, bs], mask [nb, bs])."""

  hparams: Any
  images: jax.Array
  labels: jax.Array
  mask: jax.Array

  @staticmethod
  def axes() -> "EvalInputs":
    return EvalInputs(hparams=0, images=None, labels=None, mask=None)


def model_inputs(hparams) -> dict:
  """The per-copy keyword arguments of the model (`hparams['model']`, default none)."""
  return dict(hparams.get("model", {})) if isinstance(hparams, dict) else {}


def _axis_slice(x, data_axis: str | None):
  """This device's contiguous share of a batch along axis 0 under data parallelism."""
  if data_axis is None:
    return x
  n = jax.lax.axis_size(data_axis)
  share = x.shape[0] // n
  return jax.lax.dynamic_slice_in_dim(x, jax.lax.axis_index(data_axis) * share, share)


def make_train_step(
  model,
  tx: optax.GradientTransformation,
  *,
  batch_size: int,
  num_classes: int,
  augment: ml_collections.ConfigDict,
  resolution: int,
  dtype,
  label_smoothing: float = 0.0,
  data_axis: str | None = None,
  augment_fn: Callable | None = None,
  loss_fn: Callable | None = None,
) -> Callable:
  """Returns `train_step(state, inputs: StepInputs) -> (state, metrics)` for ONE copy.

  `inputs.order` is the epoch's example order (`pipeline.epoch_permutation`, computed once per
  epoch by the caller: a 50k permutation per step would cost more than a small proxy net's step);
  step s reads `order[(s % steps_per_epoch) * batch_size :][:batch_size]`.

  `augment_fn(key, images_u8, hparams, shared, aux) -> (images_u8, aux)` runs after crop/flip
  (OHL's sampled pairs); `loss_fn(logits, labels, hparams, shared) -> per-example loss` replaces
  cross-entropy (AM-LFS). `hparams['model']` goes to the model, `hparams['optim']` to the
  optimizer's injected hyper-parameters (see `StepInputs`).
  """

  def train_step(state: CopyState, inputs: StepInputs):
    hparams, shared, images, labels, order, step = (
      inputs.hparams,
      inputs.shared,
      inputs.images,
      inputs.labels,
      inputs.order,
      inputs.step,
    )
    steps_per_epoch = images.shape[0] // batch_size
    start = (step % steps_per_epoch) * batch_size
    idx = _axis_slice(jax.lax.dynamic_slice_in_dim(order, start, batch_size), data_axis)
    x, y = images[idx], labels[idx]
    key = jax.random.fold_in(jax.random.wrap_key_data(state.rng), step)
    # 'path' (`jaxml.oneshot.SampledPath`) precedes the shard fold: all shards train one path.
    k_path = jax.random.fold_in(key, PATH_STREAM)
    if data_axis is not None:  # different crops on each shard of the batch
      key = jax.random.fold_in(key, jax.lax.axis_index(data_axis))
    k_crop, k_cut, k_aug, k_drop = jax.random.split(key, 4)
    x = pipeline.random_crop_flip(k_crop, x, pad=4 if augment.crop else 0, flip=augment.flip)
    if augment.cutout > 0:
      x = pipeline.cutout(k_cut, x, augment.cutout)
    aux = state.aux
    if augment_fn is not None:
      x, aux = augment_fn(k_aug, x, hparams, shared, aux)
    x = pipeline.normalize(x, dtype, resolution)

    def loss(params):
      logits, new_vars = model.apply(
        {"params": params, "batch_stats": state.batch_stats},
        x,
        train=True,
        mutable=["batch_stats"],
        rngs={"dropout": k_drop, "path": k_path},
        **model_inputs(hparams),
      )
      if loss_fn is None:
        per_example = cross_entropy(logits, y, num_classes, label_smoothing)
      else:
        per_example = loss_fn(logits, y, hparams, shared)
      return per_example.mean(), (logits, new_vars.get("batch_stats", {}))

    (value, (logits, batch_stats)), grads = jax.value_and_grad(loss, has_aux=True)(state.params)
    accuracy = jnp.mean(jnp.argmax(logits, -1) == y)
    if data_axis is not None:
      grads, batch_stats, value, accuracy = jax.lax.pmean(
        (grads, batch_stats, value, accuracy), data_axis
      )
      # aux holds additive per-copy accumulators: sum what every batch shard added.
      aux = jax.tree.map(lambda new, old: old + jax.lax.psum(new - old, data_axis), aux, state.aux)
    opt_hparams = hparams.get("optim", {}) if isinstance(hparams, dict) else {}
    opt_state = set_optimizer_hparams(state.opt_state, opt_hparams)
    updates, opt_state = tx.update(grads, opt_state, state.params)
    new_state = state.replace(
      step=state.step + 1,
      params=optax.apply_updates(state.params, updates),
      batch_stats=batch_stats,
      opt_state=opt_state,
      aux=aux,
    )
    return new_state, {"loss": value, "accuracy": accuracy}

  return train_step
