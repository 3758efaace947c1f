"""DARTS's trunk-loop controller: between epochs it hands out GDAS's tau and the alpha half's
order, reads the copies' alphas, derives each copy's discrete cell and looks it up in the
NAS-Bench-201 table."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxml.data import pipeline
from jaxml.metrics import plots
from jaxml.search import bilevel
from jaxml.spaces import NB201Space, relaxation
from jaxml.trunks import Controller, Keep, TrunkReport


def alpha_aux(space) -> dict:
  """A copy's accumulators: the bilevel step leaves the copy's alphas there for `tell`."""
  return {"alpha": jnp.zeros(relaxation.weights_shape(space), jnp.float32)}


PARAM_FREE = ("none", "skip_connect", "avg_pool_3x3", "max_pool_3x3")


def param_free_share(space, derived: np.ndarray) -> np.ndarray:
  """[...]: the share of each derived cell's op choices that are parameter-free ops (the last axis
  of `derived`; DARTS space: its (input, op) pairs' ops)."""
  ops = np.asarray([op in PARAM_FREE for op in space.OPS])
  derived = np.asarray(derived)
  if not isinstance(space, NB201Space):  # DARTS cells interleave (input, op): ops are odd entries
    derived = derived[..., 1::2]
  return ops[derived].mean(-1)


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
    self.aux_init = alpha_aux(space)

  def init(self, key):
    del key
    return {
      "epoch": np.int32(0),
      "weights": np.zeros((self.k, *self.shape), np.float32),
      "derived": np.zeros((self.k, self.space.encoding_length), np.int32),
      "true_acc": np.full((self.k,), np.nan, np.float32),
    }

  def ask(self, state, key):
    epoch = int(state["epoch"])
    tau = bilevel.tau_at(self.d, epoch, self.num_epochs)
    beta = bilevel.aux_skip_at(self.d, epoch, self.num_epochs)
    order = pipeline.epoch_permutation(key, 0, self.num_alpha)
    per_copy = lambda v: np.full((self.k,), v, np.float32)  # noqa: E731
    hparams = {"darts": {"tau": per_copy(tau), "aux_skip": per_copy(beta)}}
    return state, hparams, {"alpha_order": np.asarray(order)}

  def tell(self, state, report: TrunkReport):
    weights = np.asarray(jax.nn.softmax(jnp.asarray(report.aux["alpha"]), axis=-1))
    derived = np.stack([relaxation.derive(self.space, w) for w in weights])
    true_acc = np.full((self.k,), np.nan, np.float32)
    if self.table is not None:
      true_acc = np.asarray(self.table.query(derived, self.d.dataset), np.float32)
    ops = list(self.space.OPS)
    param_free = param_free_share(self.space, derived)
    info = {
      "param_free_share_mean": float(param_free.mean()),
      "true_acc_mean": float(np.mean(true_acc)),
      "true_acc_per_copy": true_acc.tolist(),
      "derived": [self.space.to_string(e) for e in derived],
      "skip_weight_mean": float(weights[..., ops.index("skip_connect")].mean()),
      "none_weight_mean": float(weights[..., ops.index("none")].mean()),
    }
    if self.d.sampling == "gumbel":
      info["tau"] = bilevel.tau_at(self.d, int(state["epoch"]), self.num_epochs)
    if self.d.aux_skip > 0:
      info["aux_skip"] = bilevel.aux_skip_at(self.d, int(state["epoch"]), self.num_epochs)
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
      # per epoch and copy: the share of the derived cell's edges that are parameter-free ops
      # (the collapse drives it to 1: the all-skip / pooling cells of NB201's DARTS row)
      "param_free_share_per_epoch": param_free_share(self.space, derived).round(3).tolist(),
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
