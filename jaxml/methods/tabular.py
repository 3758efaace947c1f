"""Tabular NAS on NAS-Bench-201: many seeds of several searches, each in one jitted vmapped call.

For every method in `config.methods` the ask/tell search (`jaxml.search`) runs `num_seeds`
independent times for N = max(queries, query_sweep) queries through the tabular driver
(`jaxml.search.driver`: a `lax.scan` of ask -> table lookup -> tell, one `jax.vmap` over per-seed
keys inside one `jax.jit`).
Because no search here changes behaviour with its total budget, the result after n <= N queries
is the prefix of that run (`SearchResult.best_after`), which gives the whole query sweep from one
run. Each seed returns the best architecture it *queried* by its own fitness.

The fitness is the table's 200-epoch test accuracy on `config.dataset` (noise-free: the table has
no validation accuracies), so the returned architectures are scored on the same numbers they were
selected on; the other two datasets show how the choice transfers. Not like-for-like with the
NAS-Bench-201 paper, which searches on 12-epoch validation accuracy.

Writes config.json, metrics.jsonl (one row per method x N, keys `<method>/...`), TensorBoard
events, plots/tabular.png (best-so-far vs queries, mean and +-1 std band per method) and
summary.json:

  {"method": "tabular", "dataset", "objective", "optimum", "num_seeds", "queries", "methods",
   <name>: {"mean_test", "std_test", "frac_optimum", "queries", "seeds", "mean_<dataset>",
            "std_<dataset>" (all three), "compile_s", "wall_s", "hparams",
            "sweep": {"<N>": {"mean_test", "std_test", "frac_optimum", "mean_<dataset>"...}}}}

Re-running on a finished workdir with the same config returns its summary without recomputing.
"""

import json
import pathlib
import time

import jax
import numpy as np
from absl import logging

from jaxml import configs
from jaxml.errors import ConfigError
from jaxml.metrics import plots
from jaxml.metrics.writers import RunWriter, to_jsonable
from jaxml.nasbench import nb201
from jaxml.search import driver
from jaxml.search.random_search import RandomSearch
from jaxml.search.regularized_evolution import RegularizedEvolution
from jaxml.search.reinforce_search import ReinforceSearch
from jaxml.search.spos_evolution import SPOSEvolution
from jaxml.spaces import NB201Space

# name -> (ask/tell search, config section with its hyper-parameters or None)
SEARCHES = {
  "random": (RandomSearch, None),
  "rea": (RegularizedEvolution, "rea"),
  "reinforce": (ReinforceSearch, "reinforce"),
  "spos": (SPOSEvolution, "spos"),
}
LABELS = {"random": "RS", "rea": "REA", "reinforce": "REINFORCE", "spos": "SPOS-EA"}
MAX_QUERY_RECORDS = 50_000_000  # every query is kept (28 bytes each) for the query sweep
_KEYS = ("seed", "num_seeds", "queries", "query_sweep", "methods", "dataset", "data")


def _is_int(x) -> bool:
  return isinstance(x, int | np.integer) and not isinstance(x, bool)


def _check(cond: bool, msg: str) -> None:
  if not cond:
    raise ConfigError(msg)


def _budgets(config) -> list[int]:
  return sorted({int(config.queries), *(int(n) for n in config.query_sweep)})


def validate_config(config) -> None:
  """`ConfigError` for missing keys or impossible values (only selected methods are checked)."""
  for k in _KEYS:
    _check(k in config, f"tabular config needs config.{k}")
  configs.check_seed(config.seed)
  _check(_is_int(config.num_seeds) and config.num_seeds >= 1, "config.num_seeds must be >= 1")
  _check(_is_int(config.queries) and config.queries >= 1, "config.queries must be >= 1")
  sweep = tuple(config.query_sweep) if isinstance(config.query_sweep, list | tuple) else None
  _check(
    sweep is not None and all(_is_int(n) and n >= 1 for n in sweep),
    f"config.query_sweep must be a tuple of ints >= 1, got {config.query_sweep!r}",
  )
  _check(
    config.dataset in nb201.DATASETS,
    f"config.dataset={config.dataset!r} is not one of {', '.join(nb201.DATASETS)}",
  )
  methods = config.methods
  _check(
    isinstance(methods, list | tuple) and len(methods) > 0,
    f"config.methods must be a non-empty tuple of names from {tuple(SEARCHES)}",
  )
  for m in methods:
    _check(m in SEARCHES, f"unknown tabular method {m!r}; valid: {', '.join(SEARCHES)}")
  _check(len(set(methods)) == len(methods), f"config.methods lists a method twice: {methods}")
  q = int(config.queries)
  records = int(config.num_seeds) * _budgets(config)[-1]
  _check(
    records <= MAX_QUERY_RECORDS,
    f"num_seeds x max(queries, query_sweep) = {records:,} query records would not fit in memory "
    f"(limit {MAX_QUERY_RECORDS:,}, about 1.4 GB of history); lower config.num_seeds or the "
    "budgets",
  )
  if "rea" in methods:
    p, s = config.rea.population_size, config.rea.sample_size
    _check(
      _is_int(p) and 1 <= p <= q, f"config.rea.population_size={p} must lie in [1, queries={q}]"
    )
    _check(
      _is_int(s) and 1 <= s <= p, f"config.rea.sample_size={s} must lie in [1, population={p}]"
    )
  if "reinforce" in methods:
    lr, d = config.reinforce.learning_rate, config.reinforce.ema_decay
    _check(lr > 0, f"config.reinforce.learning_rate must be > 0, got {lr}")
    _check(0 <= d < 1, f"config.reinforce.ema_decay must lie in [0, 1), got {d}")
  if "spos" in methods:
    c = config.spos
    p = c.population_size
    _check(
      _is_int(p) and 2 <= p <= q, f"config.spos.population_size={p} must lie in [2, queries={q}]"
    )
    _check(_is_int(c.topk) and 1 <= c.topk <= p, f"config.spos.topk={c.topk} must lie in [1, {p}]")
    _check(0 <= c.mutation_prob <= 1, "config.spos.mutation_prob must lie in [0, 1]")
    _check(_is_int(c.max_tries) and c.max_tries >= 1, "config.spos.max_tries must be >= 1")


def hparams(config, name: str) -> dict:
  section = SEARCHES[name][1]
  return {} if section is None else dict(config[section].to_dict())


def algorithm(name: str, num_queries: int, **hp) -> driver.SearchAlgorithm:
  """The search `name` over NAS-Bench-201 with hyper-parameters `hp` (its config section)."""
  if name == "random":
    # Independent draws: the whole budget in one ask (one flat draw, so the first n of N draws
    # are the n-query run) compiles in a fraction of a 500-step scan's time.
    hp = {**hp, "ask_size": num_queries}
  if name == "spos":
    # Remember every evaluation of the run (whole generations) for duplicate rejection.
    p = hp["population_size"]
    hp = {**hp, "history_size": -(-num_queries // p) * p}
  return SEARCHES[name][0](NB201Space(), **hp)


def _stats(table: nb201.NB201Table, enc: np.ndarray, dataset: str) -> dict:
  out = {}
  for d in nb201.DATASETS:
    acc = np.asarray(table.query(enc, d), np.float64)
    out[f"mean_{d.replace('-', '_')}"] = float(acc.mean())
    out[f"std_{d.replace('-', '_')}"] = float(acc.std())
    if d == dataset:
      out["mean_test"], out["std_test"] = float(acc.mean()), float(acc.std())
      out["frac_optimum"] = float(np.mean(acc >= table.optimum(d)))
  return out


def _finished(workdir: pathlib.Path, config) -> dict | None:
  """The summary of a finished run of the same config in `workdir`, else None."""
  try:
    old_config = json.loads((workdir / "config.json").read_text())
    summary = json.loads((workdir / "summary.json").read_text())
  except (OSError, json.JSONDecodeError):
    return None
  return summary if old_config == to_jsonable(config.to_dict()) else None


def run(config, workdir: str) -> dict:
  workdir = pathlib.Path(workdir)
  done = _finished(workdir, config)
  if done is not None:
    logging.info("tabular: %s already holds this run's summary; nothing to do", workdir)
    return done
  table = nb201.load(config.data.dir or None)
  writer = RunWriter(workdir)
  writer.truncate_after(-1)  # a rerun rewrites every row (results are deterministic)
  writer.write_config(config)
  evaluate = driver.nb201_evaluator(table, config.dataset)
  budgets = _budgets(config)
  n_max = budgets[-1]
  optimum = table.optimum(config.dataset)
  summary = {
    "method": "tabular",
    "dataset": config.dataset,
    "objective": f"NAS-Bench-201 200-epoch {config.dataset} test accuracy (noise-free)",
    "optimum": optimum,
    "num_seeds": int(config.num_seeds),
    "queries": int(config.queries),
    "methods": list(config.methods),
  }
  curves = {}
  for name in config.methods:
    keys = driver.seed_keys(config.seed, config.num_seeds, stream=list(SEARCHES).index(name))
    hp = hparams(config, name)
    t0 = time.perf_counter()
    compiled = driver.compile_seeds(algorithm(name, n_max, **hp), keys, evaluate, n_max)
    t1 = time.perf_counter()
    result = jax.block_until_ready(compiled(keys, evaluate))
    t2 = time.perf_counter()
    entry = {"queries": int(config.queries), "seeds": int(config.num_seeds), "hparams": hp}
    entry.update(compile_s=t1 - t0, wall_s=t2 - t1, sweep={})
    for n in budgets:
      enc, _ = result.best_after(n)
      stats = _stats(table, np.asarray(enc), config.dataset)
      if n == config.queries:
        entry.update(stats)
      if n in config.query_sweep:
        entry["sweep"][str(n)] = stats
      writer.write_scalars(n, {"method": name, **{f"{name}/{k}": v for k, v in stats.items()}})
    curves[name] = np.asarray(result.best_so_far(), np.float64)
    summary[name] = entry
    logging.info(
      "tabular %s: %d seeds x %d queries: %.2f +- %.2f (optimum found by %.1f%%), run %.2f s",
      name,
      config.num_seeds,
      config.queries,
      entry["mean_test"],
      entry["std_test"],
      100 * entry["frac_optimum"],
      entry["wall_s"],
    )
  labelled = {LABELS[name]: c for name, c in curves.items()}
  plots.plot_search_curves(labelled, optimum, config.dataset, workdir / "plots" / "tabular.png")
  writer.write_summary(summary)
  writer.close()
  return summary
