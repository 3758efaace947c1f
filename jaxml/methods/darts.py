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

import jax
import jax.numpy as jnp
import numpy as np

from jaxml import configs
from jaxml.data import pipeline
from jaxml.experiment import PopulationRun
from jaxml.methods.darts_configs import SAMPLINGS, SPACES, VARIANTS, darts_config, experiment  # noqa: F401
from jaxml.metrics import plots
from jaxml.nasbench import nb201
from jaxml.search import bilevel
from jaxml.spaces import DARTSSpace, NB201Space, relaxation
from jaxml.trunks import Controller, Keep, TrunkReport, run_trunks


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


def alpha_aux(space) -> dict:
  """A copy's accumulators: the bilevel step leaves the copy's alphas there for `tell`."""
  return {"alpha": jnp.zeros(relaxation.weights_shape(space), jnp.float32)}


class DartsController(Controller):
  """Between epochs: hand out tau and the alpha half's order; read alphas, derive, look up.

  `num_epochs` (tau's annealing length) and `num_alpha` (the alpha split's size) come from the
  run's data."""

  name = "darts"

  def __init__(self, config, space, table, num_epochs: int, num_alpha: int):
    self.d, self.space, self.table = config.darts, space, table
    self.k = config.population.size
    self.shape = relaxation.weights_shape(space)
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
    tau = bilevel.tau_at(self.d, int(state["epoch"]), self.num_epochs)
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
      info["tau"] = bilevel.tau_at(self.d, int(state["epoch"]), self.num_epochs)
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
    plots.plot_alphas(weights, labels, list(self.space.OPS), workdir / "plots" / "alphas.png")
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


def run(config, workdir: str) -> dict:
  d = config.darts
  # The table loads (or fails with a DataError) before the run writes anything.
  table = nb201.load(d.table_dir or None) if d.space == "nb201" else None
  run = PopulationRun(config, workdir)
  space = build_space(config, run.data.num_classes)
  net = space.network().clone(affine=bool(d.affine))
  model = bilevel.Supernet(
    net, relaxation.weights_shape(space), float(d.alpha_init_std), d.sampling == "gumbel"
  )
  w_tx, a_tx, schedule = bilevel.optimizers(config, run.total_steps)
  val = run.data.val
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
  # The run's engine, rebuilt around the supernet: every step is the bilevel step, whose train
  # split is the weights' half and whose extra argument is the alpha half.
  engine = run.use_model(
    model,
    bilevel.split_optimizer(w_tx, a_tx),
    schedule=schedule,
    train_step=step,
    step_args=((val.images, val.labels),),
    aux_init=alpha_aux(space),
  )
  epochs = -(-run.total_steps // engine.steps_per_epoch)
  controller = DartsController(config, space, table, epochs, int(val.labels.shape[0]))
  return run_trunks(run, controller, engine.steps_per_epoch).summary
