"""Plots written into a run directory (matplotlib, Agg backend: no display needed)."""

import os
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from jaxml.metrics.writers import read_jsonl  # noqa: E402


def _save(fig, out_path: str | os.PathLike) -> None:
  """Writes `fig` to `out_path` (parents created) and frees it."""
  fig.tight_layout()
  out_path = pathlib.Path(out_path)
  out_path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(out_path, dpi=100)
  plt.close(fig)


def plot_curves(metrics_path: str | os.PathLike, out_path: str | os.PathLike) -> None:
  """Training loss and val/test accuracy over steps, from metrics.jsonl."""
  rows = read_jsonl(metrics_path)
  panels = [
    ("train loss", ["train_loss"]),
    ("accuracy", ["train_accuracy", "val_accuracy", "test_accuracy"]),
  ]
  fig, axes = plt.subplots(1, len(panels), figsize=(10, 3.5))
  for ax, (title, keys) in zip(axes, panels):
    for key in keys:
      pts = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), int | float)]
      if pts:
        xs, ys = zip(*pts)
        ax.plot(xs, ys, label=key, marker="." if len(pts) < 30 else None)
    ax.set_title(title)
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
      ax.legend()
  _save(fig, out_path)


def plot_policy(thetas, names, out_path: str | os.PathLike, top: int = 10) -> None:
  """Probability of the `top` most likely choices (at the end) over trunks: OHL's Fig. 4."""
  import numpy as np

  thetas = np.asarray(thetas, np.float64)
  z = thetas - thetas.max(axis=1, keepdims=True)
  probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
  order = np.argsort(-probs[-1])[:top]
  fig, ax = plt.subplots(figsize=(7, 4))
  trunks = np.arange(1, len(probs) + 1)
  for i in order:
    ax.plot(trunks, probs[:, i], label=str(names[i]), marker="." if len(trunks) < 30 else None)
  ax.axhline(1.0 / probs.shape[1], color="gray", ls="--", lw=1, label="uniform")
  ax.set_xlabel("trunk")
  ax.set_ylabel("probability")
  ax.set_title(f"top-{top} learned choices")
  ax.legend(fontsize=7, ncol=2)
  ax.grid(alpha=0.3)
  _save(fig, out_path)


def plot_search_curves(curves: dict, optimum: float, dataset: str, out_path) -> None:
  """Best-so-far accuracy vs queries per search (label -> [seeds, queries]): mean and ±1 std."""
  import numpy as np

  fig, ax = plt.subplots(figsize=(7, 4.5))
  lows = []
  for label, c in curves.items():
    x = np.arange(1, c.shape[1] + 1)
    mean, std = c.mean(0), c.std(0)
    ax.plot(x, mean, label=label)
    ax.fill_between(x, mean - std, np.minimum(mean + std, optimum), alpha=0.15)
    # The first few queries are mostly random cells (some at 10%); frame the part that matters.
    i = max(c.shape[1] // 10, min(9, c.shape[1] - 1))
    lows.append(float(mean[i] - std[i]))
  lo = min(lows)
  ax.axhline(optimum, color="gray", ls="--", lw=1, label=f"optimum {optimum:.2f}")
  ax.set_ylim(lo, optimum + 0.05 * (optimum - lo) + 1e-3)
  ax.set_xlabel("queries (table lookups)")
  ax.set_ylabel(f"best-so-far {dataset} test accuracy (%)")
  ax.set_title("NAS-Bench-201 tabular search: mean and ±1 std over seeds")
  ax.grid(alpha=0.3)
  ax.legend(loc="lower right")
  _save(fig, out_path)


def plot_loss_functions(tau, mus, out_path, trunks_to_draw: int = 4) -> None:
  """AM-LFS's convergence figure: tau(p) and the loss -log tau(p) of the mean theta at a few
  trunks (first, last and evenly between), against cross-entropy (tau = identity).

  `tau` is the `losses.PiecewiseLinear` on [0, 1]; `mus` f32[trunks, M + 1] the means after each
  trunk.
  """
  import numpy as np

  from jaxml import losses

  mus = np.asarray(mus, np.float32)
  picks = np.unique(np.linspace(0, len(mus) - 1, min(trunks_to_draw, len(mus))).round().astype(int))
  p = np.linspace(1e-3, 1.0, 400, dtype=np.float32)
  fig, (ax_tau, ax_loss) = plt.subplots(1, 2, figsize=(10, 4))
  for i, label in [(None, "cross-entropy")] + [(i, f"after trunk {i + 1}") for i in picks]:
    params = np.zeros(tau.num_params, np.float32) if i is None else mus[i]
    log_t = np.asarray(losses.log_tau(tau, params, np.log(p)))
    style = dict(color="gray", ls="--") if i is None else {}
    ax_tau.plot(p, np.exp(log_t), label=label, **style)
    ax_loss.plot(p, -log_t, label=label, **style)
  ax_tau.set(xlabel="p (softmax probability of the label)", ylabel="tau(p)", title="tau")
  ax_loss.set(xlabel="p", ylabel="-log tau(p)", title="per-example loss", ylim=(0, 7))
  for ax in (ax_tau, ax_loss):
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  _save(fig, out_path)


def plot_alphas(weights: np.ndarray, edges: list[str], ops: list[str], out_path) -> None:
  """softmax(alpha) of every edge over the epochs: one panel per edge, one colour per op, the
  mean over copies as a line and the copies' range shaded. weights: [T, K, E, O]."""
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
  _save(fig, out_path)
