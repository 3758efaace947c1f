"""DARTS (Liu, Simonyan & Yang, "DARTS: Differentiable Architecture Search", ICLR 2019), first
and second order, and its Gumbel-sampling variant GDAS (Dong & Yang, CVPR 2019), on the
NAS-Bench-201 and DARTS cell spaces, as a population on the trunk loop.

Each copy is one search: the space's relaxed network (`jaxml.spaces.relaxation`; every edge
the mixed op sum_o w_o o(x)) plus its own architecture parameters alpha float32[E, O], a leaf of
the copy's params, so several seeds (or settings) run as one population. Every step is the
bilevel step of `jaxml.search.bilevel` (Alg. 1): an alpha step on a batch of the split's second
half (`data.val_size` images held out of train, NB201's 25k/25k `cifar10-valid` protocol), then
a weight step on the first half. Optimisers (the paper's): SGD momentum 0.9 with cosine decay to
`darts.lr_min` and global-norm clip 5 on the weights; Adam 3e-4, betas (0.5, 0.999), coupled
weight decay 1e-3 on alpha, initialised at 1e-3 N(0, 1).

A trunk is one epoch. At its end the controller reads the copies' alphas (the step leaves them
in `aux`), derives the discrete cell (argmax excluding `none`; DARTS space: top-2 inputs per
node) and, on NB201, its ground-truth 200-epoch test accuracy from the NAS-Bench-201 table:
metrics.jsonl rows, trunks.npz (`weights` = softmax(alpha), `derived`, `true_acc` per epoch),
plots/alphas.png and summary.json. The trunk loop's val / test accuracies are the supernet's.

GDAS (`darts.sampling='gumbel'`): each forward pass uses one straight-through Gumbel sample of
the op per edge with temperature tau annealed linearly from `tau_max` = 10 to `tau_min` = 0.1
over the epochs (GDAS §3.2); the sampled architecture is what the forward pass computes, but the
array build still evaluates every op (see `jaxml.search.bilevel`). The NAS-Bench-201 paper
reports DARTS collapsing there to an all-skip cell (54.30 CIFAR-10 test for both orders) and
GDAS at 93.61 +- 0.09.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxml import configs
from jaxml.data import pipeline
from jaxml.engine import Engine
from jaxml.experiment import PopulationRun
from jaxml.metrics import plots
from jaxml.nasbench import nb201
from jaxml.search import bilevel
from jaxml.spaces import DARTSSpace, NB201Space, relaxation
from jaxml.training import StepInputs
from jaxml.trunks import Keep, TrunkReport, run_trunks

VARIANTS = ("smoke", "cpu", "second_order", "gdas")
SPACES = {"nb201": "nb201", "darts": "darts_cells"}  # darts.space -> model.name
SAMPLINGS = ("softmax", "gumbel")


def darts_config(**overrides) -> ml_collections.ConfigDict:
  defaults = dict(
    space="nb201",  # nb201 | darts (model.name must be nb201 | darts_cells)
    order=1,  # 1: first order; 2: the unrolled step with the finite-difference HVP (eq. 7-8)
    sampling="softmax",  # softmax (DARTS) | gumbel (GDAS straight-through sample)
    alpha_lr=3e-4,
    alpha_b1=0.5,
    alpha_b2=0.999,
    alpha_weight_decay=1e-3,
    alpha_init_std=1e-3,
    lr_min=0.001,  # cosine floor of the weights' learning rate
    tau_max=10.0,  # GDAS temperature, annealed linearly over the epochs
    tau_min=0.1,
    affine=False,  # BN scale/bias of the cell ops (DARTS searches without)
    dataset="cifar10",  # NB201 table column of the derived cells' true accuracy
    table_dir="",  # NB201 table root ('' = the data search order)
  )
  return ml_collections.ConfigDict({**defaults, **overrides})


def experiment(space: str, arg: str | None, name: str) -> ml_collections.ConfigDict:
  """The standard GPU search of `space` (50 epochs, batch 64, 25k/25k halves), or its variants:
  `cpu` (C 8, N 1 / 5 layers, 16x16, 1,280 + 1,280 images, 10 epochs), `smoke` (CPU seconds),
  `second_order`, `gdas`.
  """
  v = configs.parse_variants(arg, VARIANTS, name=name, exclusive=[("smoke", "cpu")])
  c = configs.training_config("darts", SPACES[space])
  c.darts = darts_config(space=space, order=2 if "second_order" in v else 1)
  if "gdas" in v:
    c.darts.sampling = "gumbel"
  c.optim.update(lr=0.025, momentum=0.9, nesterov=False, weight_decay=3e-4, grad_clip=5.0)
  c.data.update(val_size=25000)
  c.update(batch_size=64, eval_batch_size=500, num_epochs=50.0, log_every_steps=50)
  c.population.update(size=3, same_batch=False)
  if space == "darts":
    c.model.update(channels=16, layers=8)
  else:
    c.model.update(channels=16, cells_per_stage=5)
  if "cpu" in v:
    # 1,280 alpha images held out; 2.63% of the other 48,720 leaves ~1,280 for the weights
    # (20 steps of 64 per epoch). `vmap`: one copy's graph to compile, not K (the `loop`
    # mapping's K unrolled second-order graphs took over 10 min to compile on a busy 2-core CPU).
    c.data.update(sample_ratio=0.02627, val_size=1280, resolution=16)
    c.update(num_epochs=10.0, log_every_steps=10)
    c.population.mapping = "vmap"
    c.model.update(channels=8, **({"layers": 5} if space == "darts" else {"cells_per_stage": 1}))
  if "smoke" in v:
    c.data.update(sample_ratio=0.0065, val_size=320, resolution=16)
    c.update(batch_size=32, num_steps=-1, num_epochs=2.0, log_every_steps=5)
    c.model.update(channels=4, **({"layers": 3} if space == "darts" else {"cells_per_stage": 1}))
    c.population.update(size=2, mapping="vmap", fast_compile=True)
  return c


def validate_config(config) -> None:
  d = config.darts
  check = configs.check
  check(d.space in SPACES, f"darts.space={d.space!r}; valid: {', '.join(SPACES)}")
  check(
    config.model.name == SPACES[d.space],
    f"darts.space={d.space!r} searches the {SPACES[d.space]!r} network: set "
    f"model.name={SPACES[d.space]!r} (got {config.model.name!r})",
  )
  configs.validate_training_config(config)
  check(
    config.model.get("arch", "") == "",
    "darts searches the array build: model.arch must be '' (a fixed cell has no alphas)",
  )
  check(config.model.dtype == "float32", "darts: the space networks are float32 only")
  check(d.order in (1, 2), f"darts.order must be 1 or 2, got {d.order!r}")
  check(d.sampling in SAMPLINGS, f"darts.sampling={d.sampling!r}; valid: {', '.join(SAMPLINGS)}")
  check(d.alpha_lr > 0, f"darts.alpha_lr must be > 0, got {d.alpha_lr}")
  check(d.alpha_weight_decay >= 0, "darts.alpha_weight_decay must be >= 0")
  check(d.alpha_init_std >= 0, "darts.alpha_init_std must be >= 0")
  check(
    0 <= d.lr_min < config.optim.lr,
    f"darts.lr_min must be in [0, optim.lr={config.optim.lr}), got {d.lr_min}",
  )
  check(
    0 < d.tau_min <= d.tau_max,
    f"darts: need 0 < tau_min <= tau_max, got tau_min={d.tau_min}, tau_max={d.tau_max}",
  )
  check(
    config.data.val_size > 0,
    "darts takes its alpha steps on the val split (the train split's other half): "
    "data.val_size > 0",
  )
  if d.space == "nb201":
    check(d.dataset in nb201.DATASETS, f"darts.dataset={d.dataset!r}; valid: {nb201.DATASETS}")


def build_space(config, num_classes: int):
  m = config.model
  if config.darts.space == "nb201":
    return NB201Space(m.channels, m.cells_per_stage, num_classes, config.data.resolution)
  return DARTSSpace(m.channels, m.layers, num_classes, config.data.resolution, m.stem_multiplier)


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


def tau_at(d, epoch: int, num_epochs: int) -> float:
  """GDAS: tau decays linearly from tau_max (first epoch) to tau_min (last epoch)."""
  frac = epoch / max(num_epochs - 1, 1)
  return float(d.tau_max - (d.tau_max - d.tau_min) * min(frac, 1.0))


class DartsController:
  """Between epochs: hand out tau and the alpha half's order; read alphas, derive, look up."""

  name = "darts"
  augment_fn = loss_fn = None

  def __init__(self, config, space, table):
    self.d, self.space, self.table = config.darts, space, table
    self.k = config.population.size
    self.shape = relaxation.weights_shape(space)
    self.aux_init = {"alpha": jnp.zeros(self.shape, jnp.float32)}
    self.num_epochs, self.num_alpha = 1, 1  # set by `bind` once the data is loaded

  def bind(self, num_epochs: int, num_alpha: int) -> None:
    self.num_epochs, self.num_alpha = num_epochs, num_alpha

  def init(self, key):
    del key
    return {
      "epoch": np.int32(0),
      "weights": np.zeros((self.k, *self.shape), np.float32),
      "derived": np.zeros((self.k, self.space.encoding_length), np.int32),
      "true_acc": np.full((self.k,), np.nan, np.float32),
    }

  def ask(self, state, key):
    tau = tau_at(self.d, int(state["epoch"]), self.num_epochs)
    order = pipeline.epoch_permutation(key, 0, self.num_alpha)
    hparams = {"darts": {"tau": np.full((self.k,), tau, np.float32)}}
    return state, hparams, {"alpha_order": np.asarray(order)}

  def tell(self, state, report: TrunkReport):
    weights = np.asarray(jax.nn.softmax(jnp.asarray(report.aux["alpha"]), axis=-1))
    derived = np.stack([relaxation.derive(self.space, w) for w in weights])
    true_acc = np.full((self.k,), np.nan, np.float32)
    if self.table is not None:
      true_acc = np.asarray(self.table.query(derived, self.d.dataset), np.float32)
    ops = list(self.space.OPS)
    info = {
      "true_acc_mean": float(np.mean(true_acc)),
      "true_acc_per_copy": true_acc.tolist(),
      "derived": [self.space.to_string(e) for e in derived],
      "skip_weight_mean": float(weights[..., ops.index("skip_connect")].mean()),
      "none_weight_mean": float(weights[..., ops.index("none")].mean()),
    }
    if self.d.sampling == "gumbel":
      info["tau"] = tau_at(self.d, int(state["epoch"]), self.num_epochs)
    new = {
      "epoch": np.int32(int(state["epoch"]) + 1),
      "weights": weights.astype(np.float32),
      "derived": derived.astype(np.int32),
      "true_acc": true_acc,
    }
    return new, Keep(), info

  def history(self, state) -> dict:
    return {k: np.asarray(state[k]) for k in ("weights", "derived", "true_acc")}

  def summary(self, state, history: dict, workdir) -> dict:
    weights, derived, true_acc = history["weights"], history["derived"], history["true_acc"]
    labels = relaxation.edge_labels(self.space)
    plot_alphas(weights, labels, list(self.space.OPS), workdir / "plots" / "alphas.png")
    final = true_acc[-1].astype(np.float64)
    out = {
      "space": self.space.name,
      "order": int(self.d.order),
      "sampling": self.d.sampling,
      "ops": list(self.space.OPS),
      "edges": labels,
      "derived_per_epoch": [[self.space.to_string(e) for e in row] for row in derived],
      "final_derived": [self.space.to_string(e) for e in derived[-1]],
      "final_weights": weights[-1].round(4).tolist(),
    }
    if self.table is not None:
      out.update(
        true_accuracy_dataset=self.d.dataset,
        true_accuracy_per_epoch=true_acc.astype(np.float64).round(3).tolist(),
        final_true_accuracy_per_copy=final.tolist(),
        final_true_accuracy_mean=float(final.mean()),
        final_true_accuracy_std=float(final.std()),
        table_optimum=self.table.optimum(self.d.dataset),
      )
    return out


def plot_alphas(weights: np.ndarray, edges: list[str], ops: list[str], out_path) -> None:
  """softmax(alpha) of every edge over the epochs: one panel per edge, one colour per op, the
  mean over copies as a line and the copies' range shaded. weights: [T, K, E, O]."""
  plt = plots.plt
  n_edges = weights.shape[2]
  cols = min(n_edges, 7)
  rows = -(-n_edges // cols)
  fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.2 * rows + 0.6), squeeze=False)
  epochs = np.arange(1, weights.shape[0] + 1)
  for e, ax in enumerate(axes.flat):
    if e >= n_edges:
      ax.axis("off")
      continue
    for o, op in enumerate(ops):
      w = weights[:, :, e, o]
      (line,) = ax.plot(epochs, w.mean(1), label=op, lw=1.2)
      ax.fill_between(epochs, w.min(1), w.max(1), color=line.get_color(), alpha=0.15, lw=0)
    ax.set_title(edges[e], fontsize=8)
    ax.set_ylim(0, 1)
    ax.tick_params(labelsize=7)
  axes.flat[0].legend(fontsize=6, loc="upper left")
  fig.suptitle(f"softmax(alpha) per edge over epochs (mean over {weights.shape[1]} copies)")
  plots._save(fig, out_path)


def run(config, workdir: str) -> dict:
  d = config.darts
  # The table loads (or fails with a DataError) before the run writes anything.
  table = nb201.load(d.table_dir or None) if d.space == "nb201" else None
  space = build_space(config, 10)
  controller = DartsController(config, space, table)
  run = PopulationRun(config, workdir, controller)
  space = build_space(config, run.data.num_classes)
  net = space.network().clone(affine=bool(d.affine))
  model = Supernet(
    net, relaxation.weights_shape(space), float(d.alpha_init_std), d.sampling == "gumbel"
  )
  w_tx, a_tx, schedule = optimizers(config, run.total_steps)
  val = run.data.val
  # The run's engine, rebuilt around the supernet (its train split is the weights' half).
  engine = Engine(
    run.pop,
    model,
    bilevel.split_optimizer(w_tx, a_tx),
    train=(run.data.train.images, run.data.train.labels),
    eval_sets={
      s: (getattr(run.data, s).images, getattr(run.data, s).labels) for s in ("val", "test")
    },
    batch_size=config.batch_size,
    eval_batch_size=config.eval_batch_size,
    num_classes=run.data.num_classes,
    resolution=config.data.resolution,
    augment=config.data.augment,
    same_batch=config.population.same_batch,
    seed=config.seed,
    aux_init=controller.aux_init,
  )
  step = bilevel.make_bilevel_step(
    model,
    w_tx,
    a_tx,
    schedule,
    order=int(d.order),
    sampling=d.sampling,
    batch_size=config.batch_size,
    num_classes=run.data.num_classes,
    augment=config.data.augment,
    resolution=config.data.resolution,
    data_axis=run.pop.data_axis,
  )
  mapped = run.pop.map(step, (0, StepInputs.axes(config.population.same_batch), None), (0,))
  alpha_split = run.pop.put_replicated((val.images, val.labels))
  # Every step is the bilevel step; the engine's evaluation, init and data order stay its own.
  engine.train_step = lambda pop, inputs: mapped(pop, inputs, alpha_split)
  run.engine, run.schedule = engine, schedule
  epochs = -(-run.total_steps // engine.steps_per_epoch)
  controller.bind(epochs, int(val.labels.shape[0]))
  every = configs.steps("checkpoint_every", config, engine.steps_per_epoch, default=0)
  return run_trunks(run, controller, engine.steps_per_epoch, every)
