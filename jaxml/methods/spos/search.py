"""The parts of SPOS (`jaxml.methods.spos`) after the supernet's training: the ranking study
against NAS-Bench-201 and the evolution search (Guo et al., ECCV 2020, Alg. 1) over the trained
supernets (resumable), both scoring paths with `jaxml.oneshot.PathScorer` (Sec. 3.3)."""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from jaxml import oneshot
from jaxml.methods.spos import fewshot, report
from jaxml.metrics import rank
from jaxml.metrics.writers import write_json_atomic, write_npz_atomic
from jaxml.search.spos_evolution import SPOSEvolution
from jaxml.spaces import nb201_encoding as enc201


def copy_scorer(scorer: oneshot.PathScorer, pop, canonical):
  """score(copy, encodings) -> float64 [n]: `scorer` on copy `copy`'s supernet; with a
  canonical index map (unique sampling) an isomorphic cell is scored as its class's
  representative."""

  def score(copy: int, encodings) -> np.ndarray:
    encs = np.asarray(encodings, np.int32)
    if canonical is not None:
      encs = enc201.index_to_encoding(canonical[enc201.encoding_to_index(encs)])
    return scorer(oneshot.copy_variables(pop, copy), encs)

  return score


def ranking_archs(table, s, seed: int):
  """(indices, is_random): `rank_random` uniform cells (seeded) + the table's `rank_top` best."""
  acc = np.asarray(table.values(s.dataset))
  rand = np.random.default_rng([seed, 21]).choice(acc.size, s.rank_random, replace=False)
  top = [i for i in np.argsort(-acc, kind="stable")[: s.rank_top] if i not in set(rand)]
  idx = np.concatenate([rand, np.asarray(top, np.int64)]).astype(np.int64)
  return idx, np.arange(idx.size) < rand.size


def ranking_metrics(scores, truth, is_random, top10_threshold: float) -> dict:
  """Kendall / Spearman over the random cells, all scored cells and those in the space's true
  top 10 %; precision@top-5 % and the true accuracy of the best-scored random cell."""
  s, t = np.asarray(scores, np.float64), np.asarray(truth, np.float64)
  top10 = t >= top10_threshold
  subsets = {"random": is_random, "all": np.ones_like(is_random), "true_top10pct": top10}
  out = rank.rank_metrics(s, t, subsets, min_size=3)
  out["num_true_top10pct"] = int(top10.sum())
  k = max(1, int(round(0.05 * is_random.sum())))
  out |= rank.rank_metrics(s, t, {}, precision={"precision_at_top5pct": (k, is_random)})
  out["top1_true_accuracy"] = float(t[is_random][np.argmax(s[is_random])])
  return out


def ranking_study(config, scorer, table, workdir: pathlib.Path, supernets: int) -> dict:
  """Scores of the ranking cells on each of the `supernets` (ranking.json, read back when it
  exists)."""
  s, path = config.spos, workdir / "ranking.json"
  idx, is_random = ranking_archs(table, s, config.seed)
  acc = np.asarray(table.values(s.dataset), np.float64)
  if path.exists():
    scores = np.asarray(report.read_json(path)["scores"], np.float64)
  else:
    encs = enc201.index_to_encoding(idx)
    scores = np.stack([scorer(i, encs) for i in range(supernets)])
  threshold = float(np.quantile(acc, 0.9))
  per_copy = [ranking_metrics(sc, acc[idx], is_random, threshold) for sc in scores]
  out = {
    "architectures": [enc201.to_string(enc201.index_to_encoding(int(i))) for i in idx],
    "is_random": is_random.tolist(),
    "true_accuracy": acc[idx].tolist(),
    "scores": scores.tolist(),
    "metrics_per_copy": per_copy,
    "metrics_mean": report.mean_metrics(per_copy),
    "true_top10pct_threshold": threshold,
  }
  write_json_atomic(path, out)
  return out


def evolve(config, scorer, evo, copy: int, workdir: pathlib.Path):
  """SPOS evolution on copy `copy`'s supernet; the state is saved after every generation."""
  s = config.spos
  path = workdir / "search" / f"copy{copy}.npz"
  state = evo.init(jax.random.key(0))
  leaves, treedef = jax.tree.flatten(state)
  length = evo.space.encoding_length
  done, history = 0, np.zeros((0, length), np.int32)
  fitness = np.zeros((0,), np.float64)
  if path.exists():
    with np.load(path) as f:
      done, history, fitness = int(f["generation"]), f["history"], f["fitness"]
      state = jax.tree.unflatten(treedef, [jnp.asarray(f[f"state{j}"]) for j in range(len(leaves))])
  key = jax.random.fold_in(jax.random.fold_in(jax.random.key(config.seed), 5), copy)
  ask, tell = jax.jit(evo.ask), jax.jit(evo.tell)
  for g in range(done, s.generations):
    state, cands = ask(state, jax.random.fold_in(key, g))
    fit = scorer(copy, cands)
    state = tell(state, cands, jnp.asarray(fit, jnp.float32))
    history = np.concatenate([history, np.asarray(cands)])
    fitness = np.concatenate([fitness, fit])
    arrays = {f"state{j}": np.asarray(x) for j, x in enumerate(jax.tree.leaves(state))}
    write_npz_atomic(path, dict(generation=g + 1, history=history, fitness=fitness, **arrays))
  return state, history, fitness


def search(config, run, pop, net, space, costs, canonical, table, train_summary) -> dict:
  """Ranking study and evolution over the trained supernets `pop`; the summary."""
  s, workdir = config.spos, run.workdir
  paths = int(s.paths_per_call or s.population_size)
  path_scorer = oneshot.val_scorer(run, "spos", net, paths)
  # Few-shot: the copies are the sub-supernets of one supernet, each cell scored on its op's.
  if s.split_edge >= 0:
    scorer, supernets = fewshot.routed_scorer(path_scorer, pop, s.split_edge), 1
  else:
    scorer, supernets = copy_scorer(path_scorer, pop, canonical), config.population.size
  summary = dict(train_summary, space=space.name, sampling=s.sampling, affine=bool(s.affine))
  if table is not None and s.rank_random:
    ranking = ranking_study(config, scorer, table, workdir, supernets)
    summary["ranking"] = {k: ranking[k] for k in ("metrics_per_copy", "metrics_mean")}
    summary["ranking"]["anchors"] = report.ANCHORS
    report.plot_ranking(ranking, workdir / "plots" / "rank_scatter.png")
  if s.generations:
    constrained = oneshot.ConstrainedSpace(
      space, costs, float(s.max_flops), float(s.max_params), canonical
    )
    p = int(s.population_size)
    evo = SPOSEvolution(constrained, p, s.topk, s.mutation_prob, s.max_tries, p * s.generations)
    runs = [evolve(config, scorer, evo, i, workdir) for i in range(supernets)]
    summary["search"] = report.search_summary(config, space, costs, table, runs)
    report.plot_evolution(runs, p, workdir / "plots" / "evolution.png")
  write_json_atomic(workdir / "summary.json", summary)
  return summary
