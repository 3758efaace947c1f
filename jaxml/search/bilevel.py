"""DARTS's bilevel step for ONE copy: an architecture step on a val batch, then a weight step on
a train batch (Liu et al., "DARTS: Differentiable Architecture Search", ICLR 2019, Alg. 1).

The copy's params are `{'alpha': float32[E, O], 'net': ...}` (the alphas are a per-copy leaf of
the population, so K seeds or settings are one pytree) and its optimizer state
`{'w': ..., 'alpha': ...}` (`split_optimizer`). The model is called as
`model.apply({'params': params, ...}, x, train=True, weights=w)` with op weights w computed here
from alpha: softmax(alpha) (DARTS) or GDAS's straight-through Gumbel sample
(`jaxml.spaces.relaxation`).

Architecture gradient:
- first order: grad_alpha L_val(w, alpha) (DARTS §2.3 with xi = 0);
- second order (eq. 7-8, `unrolled_alpha_grad`): the gradient at the unrolled weights
  w' = w - xi grad_w L_train(w, alpha) minus xi times a finite-difference Hessian-vector product,
  epsilon = 0.01 / ||grad_w' L_val(w', alpha)|| as in the paper; xi = the weights' current
  learning rate. The virtual step is the paper's plain gradient step (the reference code also
  adds momentum and weight decay to it).

BN running statistics are updated by the weight step only (the architecture step's forward
passes, virtual ones included, are training-mode passes whose statistics are dropped).
All candidate ops are computed in both variants: the array build's mixed op is a weighted sum
over every op, and even GDAS's straight-through gradient with respect to an unsampled op's
weight needs that op's output (GDAS's own code computes only the sampled op and gives the
others a gradient that ignores their outputs; this implementation keeps the exact estimator).
"""

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxml.data import pipeline
from jaxml.spaces import relaxation
from jaxml.training import StepInputs, cross_entropy


def split_optimizer(
  w_tx: optax.GradientTransformation, a_tx: optax.GradientTransformation
) -> optax.GradientTransformation:
  """One transformation over `{'net', 'alpha'}` params: `w_tx` on the weights, `a_tx` on alpha.

  The bilevel step calls the two parts at different times with different gradients; this joint
  form gives the engine a state to initialise (and checkpoint) as one `opt_state`.
  """

  def init(params):
    return {"w": w_tx.init(params["net"]), "alpha": a_tx.init(params["alpha"])}

  def update(grads, state, params=None):
    net = None if params is None else params["net"]
    alpha = None if params is None else params["alpha"]
    uw, sw = w_tx.update(grads["net"], state["w"], net)
    ua, sa = a_tx.update(grads["alpha"], state["alpha"], alpha)
    return {"net": uw, "alpha": ua}, {"w": sw, "alpha": sa}

  return optax.GradientTransformation(init, update)


def unrolled_alpha_grad(train_loss: Callable, val_loss: Callable, w, alpha, xi):
  """DARTS eq. 7-8: the approximate architecture gradient of L_val(w*(alpha), alpha).

  grad_alpha L_val(w', alpha) - xi (grad_alpha L_train(w+, alpha) - grad_alpha L_train(w-, alpha))
  / (2 eps), with w' = w - xi grad_w L_train(w, alpha), w+- = w +- eps grad_w' L_val(w', alpha)
  and eps = 0.01 / ||grad_w' L_val(w', alpha)||. `train_loss(w, alpha)` / `val_loss(w, alpha)`
  are scalar functions; w may be any pytree.
  """
  g_train = jax.grad(train_loss)(w, alpha)
  w_unrolled = jax.tree.map(lambda p, g: p - xi * g, w, g_train)
  dw, dalpha = jax.grad(val_loss, argnums=(0, 1))(w_unrolled, alpha)
  eps = 0.01 / jnp.maximum(optax.tree.norm(dw), 1e-12)
  w_plus = jax.tree.map(lambda p, v: p + eps * v, w, dw)
  w_minus = jax.tree.map(lambda p, v: p - eps * v, w, dw)
  g_plus = jax.grad(train_loss, argnums=1)(w_plus, alpha)
  g_minus = jax.grad(train_loss, argnums=1)(w_minus, alpha)
  return dalpha - xi * (g_plus - g_minus) / (2.0 * eps)


def op_weights(sampling: str, alpha, key, tau):
  """The op weights of one forward pass: softmax(alpha) or a Gumbel straight-through sample."""
  if sampling == "gumbel":
    return relaxation.gumbel_weights(key, alpha, tau)[0]
  return relaxation.softmax_weights(alpha)


def make_bilevel_step(
  model,
  w_tx: optax.GradientTransformation,
  a_tx: optax.GradientTransformation,
  w_lr: Callable,
  *,
  order: int,
  sampling: str,
  batch_size: int,
  num_classes: int,
  augment,
  resolution: int,
  data_axis: str | None = None,
  aux_skip_index: int | None = None,
) -> Callable:
  """`step(state, inputs: StepInputs, alpha_split) -> (state, metrics)` for ONE copy.

  Weight batches come from the engine's train split in `inputs.order`; architecture batches
  from `alpha_split` = (uint8 images, labels) of the other half, in the epoch order
  `inputs.shared['alpha_order']`, at the same position. `inputs.hparams['darts']['tau']` is the
  Gumbel temperature. Both batches get the train augmentation (DARTS draws both halves from the
  augmented train set). `w_lr(count)` is the weights' learning rate (xi of the unrolled step).

  `aux_skip_index`: DARTS- (Chu et al., ICLR 2021, §3.2): every edge's mixed output gets an
  auxiliary skip beta * x, beta = `inputs.hparams['darts']['aux_skip']` (decayed to 0 over the
  search), so that skip connections need not win alpha to let the gradient through. On a cell
  whose edges all keep the resolution (NAS-Bench-201) beta * x is the skip op's output times
  beta: it is added to that op's weight (index `aux_skip_index`), in both steps.
  """

  def batch(key, images, labels, idx):
    x = pipeline.random_crop_flip(key, images[idx], pad=4 if augment.crop else 0, flip=augment.flip)
    if augment.cutout > 0:
      x = pipeline.cutout(jax.random.fold_in(key, 1), x, augment.cutout)
    return pipeline.normalize(x, jnp.float32, resolution), labels[idx]

  def step(state, inputs: StepInputs, alpha_split):
    a_images, a_labels = alpha_split
    s = inputs.step
    steps_per_epoch = inputs.images.shape[0] // batch_size
    start = (s % steps_per_epoch) * batch_size
    idx_w = jax.lax.dynamic_slice_in_dim(inputs.order, start, batch_size)
    a_order = inputs.shared["alpha_order"]
    idx_a = a_order[(start + jnp.arange(batch_size)) % a_order.shape[0]]
    key = jax.random.fold_in(jax.random.wrap_key_data(state.rng), s)
    k_w, k_a, k_gw, k_ga = jax.random.split(key, 4)
    xw, yw = batch(k_w, inputs.images, inputs.labels, idx_w)
    xa, ya = batch(k_a, a_images, a_labels, idx_a)
    tau = inputs.hparams["darts"]["tau"]
    net, alpha = state.params["net"], state.params["alpha"]

    def weights(a, k):
      w = op_weights(sampling, a, k, tau)
      if aux_skip_index is None:
        return w
      return w.at[:, aux_skip_index].add(inputs.hparams["darts"]["aux_skip"])

    def loss(w, a, x, y, k):
      variables = {"params": {"net": w, "alpha": a}, "batch_stats": state.batch_stats}
      logits, new = model.apply(
        variables, x, train=True, weights=weights(a, k), mutable=["batch_stats"]
      )
      return cross_entropy(logits, y, num_classes).mean(), (logits, new.get("batch_stats", {}))

    train_loss = lambda w, a: loss(w, a, xw, yw, k_ga)[0]  # noqa: E731
    val_loss = lambda w, a: loss(w, a, xa, ya, k_ga)[0]  # noqa: E731
    if order == 2:
      g_alpha = unrolled_alpha_grad(train_loss, val_loss, net, alpha, w_lr(state.step))
    else:
      g_alpha = jax.grad(val_loss, argnums=1)(net, alpha)
    if data_axis is not None:
      g_alpha = jax.lax.pmean(g_alpha, data_axis)
    a_updates, a_state = a_tx.update(g_alpha, state.opt_state["alpha"], alpha)
    alpha = optax.apply_updates(alpha, a_updates)

    (value, (logits, batch_stats)), g_w = jax.value_and_grad(
      lambda w: loss(w, alpha, xw, yw, k_gw), has_aux=True
    )(net)
    accuracy = jnp.mean(jnp.argmax(logits, -1) == yw)
    if data_axis is not None:
      g_w, batch_stats, value, accuracy = jax.lax.pmean(
        (g_w, batch_stats, value, accuracy), data_axis
      )
    w_updates, w_state = w_tx.update(g_w, state.opt_state["w"], net)
    new_state = state.replace(
      step=state.step + 1,
      params={"net": optax.apply_updates(net, w_updates), "alpha": alpha},
      batch_stats=batch_stats,
      opt_state={"w": w_state, "alpha": a_state},
      # The trunk report reads the copies' aux: the alphas after this step (not a sum).
      aux={"alpha": alpha},
    )
    return new_state, {"loss": value, "accuracy": accuracy}

  return step


class Supernet(nn.Module):
  """A space's relaxed network with its architecture parameters: params {'alpha', 'net'}.

  Called with `weights` (the step computes them from alpha), or without: then softmax(alpha)
  (DARTS) or one-hot argmax(alpha) (`hard`, GDAS's deterministic architecture) for evaluation.
  """

  net: nn.Module
  shape: tuple[int, int]
  init_std: float = 1e-3
  hard: bool = False

  @nn.compact
  def __call__(self, x, train: bool = False, weights=None):
    alpha = self.param("alpha", lambda k, s: self.init_std * jax.random.normal(k, s), self.shape)
    if weights is None:
      if self.hard:
        weights = jax.nn.one_hot(jnp.argmax(alpha, -1), self.shape[1], dtype=alpha.dtype)
      else:
        weights = relaxation.softmax_weights(alpha)
    return self.net(x, train=train, weights=weights)


def optimizers(config, total_steps: int):
  """(weights' SGD, alphas' Adam, the weights' schedule), the paper's settings."""
  o, d = config.optim, config.darts
  schedule = optax.cosine_decay_schedule(o.lr, max(total_steps, 1), alpha=d.lr_min / o.lr)
  parts = [optax.clip_by_global_norm(o.grad_clip)] if o.grad_clip > 0 else []
  parts += [
    optax.add_decayed_weights(o.weight_decay),
    optax.sgd(schedule, momentum=o.momentum or None, nesterov=o.nesterov),
  ]
  # torch.optim.Adam's weight_decay (the reference) is L2 added to the gradient: coupled.
  a_tx = optax.chain(
    optax.add_decayed_weights(d.alpha_weight_decay), optax.adam(d.alpha_lr, d.alpha_b1, d.alpha_b2)
  )
  return optax.chain(*parts), a_tx, schedule


def aux_skip_at(d, epoch: int, num_epochs: int) -> float:
  """DARTS-: the auxiliary skip's beta decays linearly from `aux_skip` (first epoch) to 0 (after
  the last), the paper's default schedule."""
  return float(d.aux_skip * max(1.0 - epoch / max(num_epochs, 1), 0.0))


def tau_at(d, epoch: int, num_epochs: int) -> float:
  """GDAS: tau decays linearly from tau_max (first epoch) to tau_min (last epoch)."""
  frac = epoch / max(num_epochs - 1, 1)
  return float(d.tau_max - (d.tau_max - d.tau_min) * min(frac, 1.0))
