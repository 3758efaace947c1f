"""The parts of SPOS (`jaxml.methods.spos`) after the recipe: the supernet's run, the ranking
study against NAS-Bench-201 and the evolution search over the trained supernets (resumable)."""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from jaxml import checkpoint, experiment, oneshot, training
from jaxml.methods import spos_outputs
from jaxml.metrics import rank
from jaxml.metrics.writers import write_json_atomic
from jaxml.search.spos_evolution import SPOSEvolution
from jaxml.spaces import nb201_encoding as enc201


def supernet_net(config, space):
  """The space's array build with the supernet's BN affine setting."""
  net = space.network()
  return net.clone(affine=bool(config.spos.affine)) if hasattr(net, "affine") else net


def supernet_run(config, workdir, controller, space, sampler) -> experiment.PopulationRun:
  """A PopulationRun whose engine trains `SampledPath(array build, sampler)`."""
  run = experiment.PopulationRun(config, workdir, controller, trunk="spos")
  run.use_model(
    oneshot.SampledPath(supernet_net(config, space), sampler, int(config.spos.sub_batches))
  )
  return run


def trained_population(config, run, controller):
  """The population of the run's last checkpoint (the trunk loop has closed the run)."""
  ctrl_key = jax.random.fold_in(jax.random.key(config.seed), 3)  # as jaxml.trunks.run_trunks
  state = controller.init(jax.random.fold_in(ctrl_key, 0))
  _, hparams, _ = controller.ask(state, jax.random.fold_in(ctrl_key, 1))
  fresh = {"pop": run.engine.init_population(False, hparams), "controller": state}
  fresh["hparams"] = hparams
  with checkpoint.Checkpointer(run.workdir / "checkpoints") as ckpt:
    _, restored, _ = ckpt.restore_latest(experiment._abstract(fresh))
  return restored["pop"]


class PathScorer:
  """Scores encodings on copy i's supernet: recalibrated val accuracy, K paths per call."""

  def __init__(self, config, run, space, pop, canonical):
    s, d = config.spos, run.data
    self.canonical, self.pop = canonical, pop
    evaluator = oneshot.classification_evaluator(d.num_classes, config.data.resolution)
    self.scorer = oneshot.make_scorer(
      supernet_net(config, space),
      evaluator,
      resolution=config.data.resolution,
      compiler_options=run.pop.compiler_options,
    )
    # One program for every phase: candidates go in chunks of a fixed size (the last padded).
    self.chunk = int(s.paths_per_call or s.population_size)
    self.calib = None
    if s.calib_batches:
      n = s.calib_batches * s.calib_batch_size
      order = np.random.default_rng([config.seed, 20]).permutation(d.train.labels.shape[0])
      pick = np.resize(order, n)  # repeats the split when it is smaller than the budget
      shape = (s.calib_batches, s.calib_batch_size, *d.train.images.shape[1:])
      self.calib = jnp.asarray(d.train.images[pick].reshape(shape))
    m = s.score_val_size or d.val.labels.shape[0]
    batches = training.eval_batches(d.val.images[:m], d.val.labels[:m], config.eval_batch_size)
    self.val = tuple(jnp.asarray(b) for b in batches)

  def __call__(self, copy: int, encodings) -> np.ndarray:
    encs = np.asarray(encodings, np.int32)
    if self.canonical is not None:  # an isomorphic cell is scored as its class representative
      encs = enc201.index_to_encoding(self.canonical[enc201.encoding_to_index(encs)])
    variables = jax.tree.map(
      lambda x: x[copy], {"params": self.pop.params, "batch_stats": self.pop.batch_stats}
    )
    n = encs.shape[0]
    padded = np.concatenate([encs, np.repeat(encs[-1:], -n % self.chunk, 0)])
    acc = [
      self.scorer(variables, jnp.asarray(padded[i : i + self.chunk]), self.calib, self.val)
      for i in range(0, padded.shape[0], self.chunk)
    ]
    return np.concatenate([np.asarray(a["accuracy"], np.float64) for a in acc])[:n]


def ranking_archs(table, s, seed: int):
  """(indices, is_random): `rank_random` uniform cells (seeded) + the table's `rank_top` best."""
  acc = np.asarray(table.values(s.dataset))
  rand = np.random.default_rng([seed, 21]).choice(acc.size, s.rank_random, replace=False)
  top = [i for i in np.argsort(-acc, kind="stable")[: s.rank_top] if i not in set(rand)]
  idx = np.concatenate([rand, np.asarray(top, np.int64)]).astype(np.int64)
  return idx, np.arange(idx.size) < rand.size


def rank_metrics(scores, truth, is_random, top10_threshold: float) -> dict:
  """Kendall / Spearman over the random cells, all scored cells and those in the space's true
  top 10 %; precision@top-5 % and the true accuracy of the best-scored random cell."""
  s, t = np.asarray(scores, np.float64), np.asarray(truth, np.float64)

  def corr(mask):
    if mask.sum() < 3:
      return None, None
    a, b = jnp.asarray(s[mask], jnp.float32), jnp.asarray(t[mask], jnp.float32)
    k, r = float(rank.kendall_tau(a, b)), float(rank.spearman(a, b))
    return (k if np.isfinite(k) else None), (r if np.isfinite(r) else None)

  out = {}
  for name, mask in (
    ("random", is_random),
    ("all", np.ones_like(is_random)),
    ("true_top10pct", t >= top10_threshold),
  ):
    out[f"kendall_{name}"], out[f"spearman_{name}"] = corr(mask)
  out["num_true_top10pct"] = int((t >= top10_threshold).sum())
  k = max(1, int(round(0.05 * is_random.sum())))
  sr, tr = jnp.asarray(s[is_random], jnp.float32), jnp.asarray(t[is_random], jnp.float32)
  out["precision_at_top5pct"] = float(rank.precision_at_k(sr, tr, k))
  out["top1_true_accuracy"] = float(t[is_random][np.argmax(s[is_random])])
  return out


def ranking_study(config, scorer, table, workdir: pathlib.Path) -> dict:
  """Scores of the ranking cells on every copy (ranking.json, read back when it exists)."""
  s, path = config.spos, workdir / "ranking.json"
  idx, is_random = ranking_archs(table, s, config.seed)
  acc = np.asarray(table.values(s.dataset), np.float64)
  if path.exists():
    scores = np.asarray(spos_outputs.read_json(path)["scores"], np.float64)
  else:
    encs = enc201.index_to_encoding(idx)
    scores = np.stack([scorer(i, encs) for i in range(config.population.size)])
  threshold = float(np.quantile(acc, 0.9))
  per_copy = [rank_metrics(sc, acc[idx], is_random, threshold) for sc in scores]
  out = {
    "architectures": [enc201.to_string(enc201.index_to_encoding(int(i))) for i in idx],
    "is_random": is_random.tolist(),
    "true_accuracy": acc[idx].tolist(),
    "scores": scores.tolist(),
    "metrics_per_copy": per_copy,
    "metrics_mean": spos_outputs.mean_metrics(per_copy),
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
    spos_outputs.save_npz_atomic(path, generation=g + 1, history=history, fitness=fitness, **arrays)
  return state, history, fitness


def search(config, run, controller, space, costs, canonical, table, train_summary) -> dict:
  """Ranking study and evolution over the trained supernets; the summary."""
  s, workdir = config.spos, run.workdir
  pop = trained_population(config, run, controller)
  scorer = PathScorer(config, run, space, pop, canonical)
  summary = dict(train_summary, space=space.name, sampling=s.sampling, affine=bool(s.affine))
  if table is not None and s.rank_random:
    ranking = ranking_study(config, scorer, table, workdir)
    summary["ranking"] = {k: ranking[k] for k in ("metrics_per_copy", "metrics_mean")}
    summary["ranking"]["anchors"] = spos_outputs.ANCHORS
    spos_outputs.plot_ranking(ranking, workdir / "plots" / "rank_scatter.png")
  if s.generations:
    constrained = oneshot.ConstrainedSpace(
      space, costs, float(s.max_flops), float(s.max_params), canonical
    )
    p = int(s.population_size)
    evo = SPOSEvolution(constrained, p, s.topk, s.mutation_prob, s.max_tries, p * s.generations)
    runs = [evolve(config, scorer, evo, i, workdir) for i in range(config.population.size)]
    summary["search"] = spos_outputs.search_summary(config, space, costs, table, runs)
    spos_outputs.plot_evolution(runs, p, workdir / "plots" / "evolution.png")
  write_json_atomic(workdir / "summary.json", summary)
  return summary
