"""What a PC-NAS run reports on NAS-Bench-201 (`jaxml.methods.pcnas`): the returned cell's true
accuracy and rank in the table, each stage's candidates (supernet potential vs the table's mean
over all completions), the pool an exact-potential oracle would keep, and the ranking study of
the final supernet (SPOS's, `jaxml.methods.spos.search`); summary fields, ranking.json,
plots/pcnas_stages.png and plots/rank_scatter.png."""

import numpy as np

from jaxml.methods.pcnas import controller as ctl
from jaxml.methods.spos import report as spos_report
from jaxml.methods.spos import search as spos_search
from jaxml.metrics import plots, rank
from jaxml.metrics.writers import write_json_atomic
from jaxml.spaces import nb201_encoding as enc201


def table_truth(space, table, dataset: str):
  """(every NB201 encoding [15625, 6], its true accuracy, whether it meets the space's limit)."""
  encs = np.asarray(enc201.enumerate_all(), np.int32)
  acc = np.asarray(table.values(dataset), np.float64)
  return encs, acc, np.asarray(space.is_valid(encs), bool)


def partial_string(prefix, fixed: int) -> str:
  """The fixed edges' ops of a partial cell, '*' for the free ones (edge order of `EDGES`)."""
  return "|".join(enc201.OPS[int(o)] if i < fixed else "*" for i, o in enumerate(prefix))


def true_rank(acc: np.ndarray, value: float) -> int:
  """1 + the number of architectures strictly better than `value`."""
  return int(np.sum(acc > value)) + 1


class Reporter:
  """`report(state, history, workdir, variables) -> summary fields` of a finished run: its
  final controller state, trunk history and supernet `variables`, scored by `scorer`
  (`jaxml.oneshot.PathScorer`); `ends` = the last trunk of each stage."""

  def __init__(self, config, search, table, truth, scorer, ends):
    self.p, self.search, self.table, self.truth = config.pcnas, search, table, truth
    self.scorer, self.ends, self.seed = scorer, ends, config.seed

  def stages(self, history: dict) -> list[dict]:
    encs, acc, valid = self.truth
    out = []
    for s, end in enumerate(self.ends):
      live = history["candidate_live"][end] & np.isfinite(history["candidate_potential"][end])
      pre, est = history["candidate_prefixes"][end][live], history["candidate_potential"][end][live]
      true = ctl.true_potential(pre, s + 1, encs, acc, valid)
      kept = history["pool_prefixes"][end][history["pool_live"][end]]
      row = {
        "stage": s,
        "fixed_layers": s + 1,
        "candidates": int(live.sum()),
        "kept": [partial_string(k, s + 1) for k in kept],
        "kept_potential": history["pool_potential"][end][history["pool_live"][end]].tolist(),
        "kept_true_potential": ctl.true_potential(kept, s + 1, encs, acc, valid).tolist(),
        "best_true_potential": float(np.max(true)),
      }
      if len(est) >= 2 and np.isfinite(true).all():
        row["kendall"] = float(rank.kendall_tau(est, true))
        row["spearman"] = float(rank.spearman(est, true))
      out.append(row | {"_est": est, "_true": true})
    return out

  def study(self, workdir, variables) -> dict:
    """SPOS's ranking study on the final supernet (`spos.search.ranking_archs`: the same cells
    as a SPOS run of the same seed; `ranking_metrics`): ranking.json, plots/rank_scatter.png."""
    _, acc, _ = self.truth
    idx, is_random = spos_search.ranking_archs(self.table, self.p, self.seed)
    scores = self.scorer(variables, enc201.index_to_encoding(idx))
    threshold = float(np.quantile(acc, 0.9))
    metrics = spos_search.ranking_metrics(scores, acc[idx], is_random, threshold)
    ranking = {
      "architectures": [enc201.to_string(enc201.index_to_encoding(int(i))) for i in idx],
      "is_random": is_random.tolist(),
      "true_accuracy": acc[idx].tolist(),
      "scores": [scores.tolist()],
      "metrics_per_copy": [metrics],
      "true_top10pct_threshold": threshold,
    }
    write_json_atomic(workdir / "ranking.json", ranking)
    spos_report.plot_ranking(ranking, workdir / "plots" / "rank_scatter.png")
    return metrics | {"_score": scores, "_truth": acc[idx]}

  def __call__(self, state, history: dict, workdir, variables) -> dict:
    encs, acc, valid = self.truth
    pool = state["pool"]
    live = np.asarray(pool["live"])
    archs, pot = np.asarray(pool["prefixes"])[live], np.asarray(pool["potential"])[live]
    true = acc[enc201.encoding_to_index(archs)]
    oracle = ctl.oracle_pool(self.search, encs, acc, valid)
    best_oracle = np.asarray(oracle.prefixes)[0]
    stages, study = self.stages(history), self.study(workdir, variables)
    plot_stages(stages, study, workdir / "plots" / "pcnas_stages.png")
    optimum = float(np.max(acc[valid]))
    returned = float(true[0])
    return {
      "space": self.search.space.name,
      "layer_order": [f"{t}<-{f}" for t, f in enc201.EDGES],
      "final_pool": [enc201.to_string(a) for a in archs],
      "final_pool_potential": pot.tolist(),
      "final_pool_true_accuracy": true.tolist(),
      "returned_arch": enc201.to_string(archs[0]),
      "returned_true_accuracy": returned,
      "returned_true_rank": true_rank(acc[valid], returned),
      "returned_top_percent": 100.0 * true_rank(acc[valid], returned) / int(valid.sum()),
      "table_optimum": optimum,
      "oracle_arch": enc201.to_string(best_oracle),
      "oracle_true_accuracy": float(acc[enc201.encoding_to_index(best_oracle)]),
      "stages": [{k: v for k, v in s.items() if not k.startswith("_")} for s in stages],
      "ranking": {k: v for k, v in study.items() if not k.startswith("_")},
      "ranking_anchors": spos_report.ANCHORS,
      "true_accuracy_dataset": self.p.dataset,
    }


def plot_stages(stages: list[dict], study: dict, out_path) -> None:
  """One panel per stage: each candidate's supernet potential vs its true potential (kept ones
  filled), and the final supernet's scores vs true accuracy of the ranking study."""
  plt = plots.plt
  n = len(stages) + 1
  fig, axes = plt.subplots(1, n, figsize=(2.6 * n, 2.8), squeeze=False)
  for ax, s in zip(axes.flat, stages):
    est, true = s["_est"], s["_true"]
    kept = np.argsort(-est, kind="stable")[: len(s["kept"])]
    ax.scatter(true, est, s=10, facecolors="none", edgecolors="C0")
    ax.scatter(true[kept], est[kept], s=12, color="C1", label="kept")
    ax.set_title(f"stage {s['stage']}: K={s.get('kendall', float('nan')):.2f}", fontsize=8)
    ax.set_xlabel("true potential", fontsize=7)
    ax.tick_params(labelsize=6)
  axes.flat[0].set_ylabel("supernet potential", fontsize=7)
  ax = axes.flat[-1]
  ax.scatter(study["_truth"], study["_score"], s=6)
  k = study["kendall_random"]
  ax.set_title(f"final supernet: K={float('nan') if k is None else k:.2f}", fontsize=8)
  ax.set_xlabel("true accuracy", fontsize=7)
  ax.tick_params(labelsize=6)
  plots._save(fig, out_path)
