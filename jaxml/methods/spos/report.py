"""What a SPOS run reports (`jaxml.methods.spos`): the search summary, the published anchors of
the NAS-Bench-201 ranking study, the ranking and evolution plots."""

import json
import pathlib

import numpy as np

from jaxml.metrics import plots

# Public supernet estimates on NAS-Bench-201 CIFAR-10 (C 16, N 5, 600 epochs; few-shot NAS
# release, Zhao et al. ICML 2021) and the NB201 paper's weight-sharing rows (Dong & Yang 2020).
ANCHORS = {
  "one_shot_uniform": {
    "kendall_all": 0.485,
    "spearman_all": 0.677,
    "precision_at_top5pct": 0.014,
    "top1_true_accuracy": 91.28,
    "kendall_true_top10pct": -0.226,
  },
  "few_shot": {
    "kendall_all": 0.551,
    "spearman_all": 0.741,
    "precision_at_top5pct": 0.128,
    "top1_true_accuracy": 92.70,
    "kendall_true_top10pct": -0.082,
  },
  "rsps_test_accuracy": "87.66 +- 1.69",
  "gdas_test_accuracy": "93.61 +- 0.09",
  "aim": "Kendall >= 0.6 over random cells",
}


def read_json(path) -> dict:
  return json.loads(pathlib.Path(path).read_text())


def mean_metrics(per_copy: list[dict]) -> dict:
  """The mean over copies of every metric (None where a copy has none)."""
  out = {}
  for key in per_copy[0]:
    values = [m[key] for m in per_copy]
    out[key] = None if any(v is None for v in values) else float(np.mean(values))
  return out


def search_summary(config, space, costs, table, runs) -> dict:
  """Per copy: the TopK architectures of the evolution (fitness, FLOPs, params, true accuracy)."""
  s = config.spos
  copies = []
  for state, _history, fitness in runs:
    top, fit = np.asarray(state.top_encodings), np.asarray(state.top_fitness)
    rows = []
    for enc, f in zip(top, fit, strict=True):
      if not np.isfinite(f):
        continue
      row = {
        "architecture": space.to_string(enc),
        "fitness": float(f),
        "flops": float(costs.flops(enc)),
        "params": float(costs.params(enc)),
      }
      if table is not None:
        row["true_accuracy"] = float(table.query(enc, s.dataset))
      rows.append(row)
    best_per_generation = [
      float(np.max(fitness[: (g + 1) * s.population_size])) for g in range(s.generations)
    ]
    copies.append({"top": rows, "best_fitness_per_generation": best_per_generation})
  out = {
    "population_size": int(s.population_size),
    "generations": int(s.generations),
    "topk": int(s.topk),
    "max_flops": float(s.max_flops),
    "max_params": float(s.max_params),
    "copies": copies,
    "best_architecture_per_copy": [c["top"][0]["architecture"] for c in copies if c["top"]],
  }
  if table is not None:
    best = [c["top"][0]["true_accuracy"] for c in copies if c["top"]]
    out.update(
      best_true_accuracy_per_copy=best,
      best_true_accuracy_mean=float(np.mean(best)),
      best_true_accuracy_std=float(np.std(best)),
      table_optimum=table.optimum(s.dataset),
    )
  if copies and copies[0]["top"]:
    name = config.model.name
    out["retrain"] = {
      "note": "train the best architecture from scratch with method='train' and these overrides",
      "overrides": {"model.name": name, "model.arch": copies[0]["top"][0]["architecture"]},
    }
  return out


def ranking_title(per_copy: list[dict]) -> str:
  """The scatter's title: it shows copy 0's scores, so it says so, beside the mean over copies."""
  fmt = lambda v: "n/a" if v is None else f"{v:.3f}"
  k0 = per_copy[0]["kendall_random"]
  if len(per_copy) == 1:
    return f"supernet vs NB201, random cells: Kendall {fmt(k0)}"
  ks = [m["kendall_random"] for m in per_copy if m["kendall_random"] is not None]
  mean = sum(ks) / len(ks) if ks else None
  return (
    f"copy 0 of {len(per_copy)} vs NB201, random cells: Kendall {fmt(k0)} "
    f"(mean over copies {fmt(mean)})"
  )


def plot_ranking(ranking: dict, out_path) -> None:
  """Supernet score vs true accuracy of the ranking cells (copy 0): random vs table-top cells."""
  plt = plots.plt
  scores = np.asarray(ranking["scores"][0]) * 100
  truth = np.asarray(ranking["true_accuracy"])
  rnd = np.asarray(ranking["is_random"])
  fig, ax = plt.subplots(figsize=(5, 4))
  ax.scatter(truth[rnd], scores[rnd], s=10, label="random cells")
  ax.scatter(truth[~rnd], scores[~rnd], s=14, marker="^", label="table's best cells")
  ax.set_title(ranking_title(ranking["metrics_per_copy"]), fontsize=9)
  ax.set(xlabel="NB201 200-epoch test accuracy (%)", ylabel="supernet val accuracy (%)")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  plots._save(fig, out_path)


def plot_evolution(runs, population_size: int, out_path) -> None:
  """Best fitness so far after each generation, one line per copy."""
  plt = plots.plt
  fig, ax = plt.subplots(figsize=(5, 3.5))
  for i, (_, _, fitness) in enumerate(runs):
    best = np.maximum.accumulate(fitness.reshape(-1, population_size).max(1))
    ax.plot(np.arange(1, best.size + 1), best * 100, marker="o", label=f"supernet {i}")
  ax.set(xlabel="generation", ylabel="best supernet val accuracy (%)")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  plots._save(fig, out_path)
