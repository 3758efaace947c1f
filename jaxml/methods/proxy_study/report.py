"""The outputs of `jaxml.methods.proxy_study`: the markdown table (rows ready for RESULTS.md),
rank scatter plots per proxy and cost against Spearman."""

import pathlib

import jax.numpy as jnp
import numpy as np

from jaxml.metrics import plots, rank


def rank_metrics(scores, truth, k: int) -> dict:
  """Spearman, Kendall over all, and within the better half by truth; precision@k
  (`jaxml.metrics.rank.rank_metrics`)."""
  top = np.argsort(-np.asarray(truth), kind="stable")[: len(truth) // 2]
  return rank.rank_metrics(
    scores,
    truth,
    {"": None, "top_half_": top},
    key="{subset}{stat}",
    stats=("spearman", "kendall"),
    precision={f"precision_at_{k}": (k, None)},
  )


def write_table(path: pathlib.Path, rows: list[dict], k: int) -> None:
  """The study's table in markdown (rows ready for RESULTS.md)."""
  fmt = lambda v, spec: "n/a" if v is None else format(v, spec)
  lines = [
    f"| proxy | kind | cost fraction | Spearman | Kendall | top-half Spearman | P@{k} | wall s | "
    "step s |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ]
  for r in rows:
    cost = "0 (no training)" if r["kind"] == "zero-cost" else f"{r['cost_fraction']:.2e}"
    lines.append(
      f"| {r['proxy']} | {r['kind']} | {cost} | {fmt(r['spearman'], '.3f')} | "
      f"{fmt(r['kendall'], '.3f')} | {fmt(r['top_half_spearman'], '.3f')} | "
      f"{fmt(r[f'precision_at_{k}'], '.2f')} | {r['wall_time_s']:.0f} | "
      f"{fmt(r.get('step_time_s'), '.0f')} |"
    )
  path.write_text("\n".join(lines) + "\n")


def plot_study(out: pathlib.Path, rows: list[dict], truth: np.ndarray) -> None:
  """rank_scatter_<proxy>.png (proxy rank vs ground-truth rank) for every row and
  cost_vs_spearman.png (training proxies over cost; zero-cost proxies as lines)."""
  plt = plots.plt
  out.mkdir(parents=True, exist_ok=True)
  gt_rank = np.asarray(rank.rankdata(jnp.asarray(truth, jnp.float32)))
  for r in rows:
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.scatter(gt_rank, np.asarray(rank.rankdata(jnp.asarray(r["scores"], jnp.float32))), s=14)
    rho = "n/a" if r["spearman"] is None else f"{r['spearman']:.3f}"
    ax.set(xlabel="NB201 200-epoch test accuracy rank", ylabel=f"{r['proxy']} rank")
    ax.set_title(f"{r['proxy']}: Spearman {rho}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / f"rank_scatter_{r['proxy']}.png", dpi=100)
    plt.close(fig)
  fig, ax = plt.subplots(figsize=(6, 4))
  train = [r for r in rows if r["kind"] == "training" and r["spearman"] is not None]
  if train:
    ax.scatter([r["cost_fraction"] for r in train], [r["spearman"] for r in train], color="k")
    for r in train:
      ax.annotate(r["proxy"], (r["cost_fraction"], r["spearman"]), fontsize=7)
  for i, r in enumerate(r for r in rows if r["kind"] == "zero-cost" and r["spearman"] is not None):
    ax.axhline(r["spearman"], ls="--", lw=1, color=f"C{i}", label=r["proxy"])
  ax.set_xscale("log")
  ax.set(xlabel="cost (training FLOPs x images) / full NB201 setting", ylabel="Spearman")
  ax.grid(alpha=0.3)
  if ax.get_legend_handles_labels()[0]:
    ax.legend(fontsize=7, title="zero-cost", title_fontsize=7)
  fig.tight_layout()
  fig.savefig(out / "cost_vs_spearman.png", dpi=100)
  plt.close(fig)
