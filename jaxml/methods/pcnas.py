"""PC-NAS (Li et al., "Improving One-shot NAS by Suppressing the Posterior Fading", CVPR 2020,
arXiv 1910.02543) on the NAS-Bench-201 space: one supernet trained in stages while a partial
model pool shrinks the space, on the trunk loop.

The supernet is SPOS's (`jaxml.methods.spos`: the NB201 array build, one path per step through
`jaxml.oneshot.SampledPath`, same data, optimiser and epochs). Stage 0 samples paths uniformly
from the whole space; at the end of stage i the pool's partial models (first i layers fixed,
`jaxml.search.pcnas_pool`) are extended by every choice of layer i, each candidate's potential is
the mean val accuracy of `completions` uniform completions scored with the supernet's weights
after per-path BN recalibration (SPOS's scorer, `paths_per_call` paths per compiled call), paths
over `max_flops` excluded, and the top `pool_size` are kept; stage i + 1 samples its paths'
first i + 1 layers from the pool (`jaxml.methods.pcnas_controller`). After stage L-1 the pool
holds whole architectures, ranked; the first is the search's answer. "Layer" = one NB201 edge,
in `nb201_encoding.EDGES` order.

Choices (the paper's are not published, ../shared/REFERENCES.md §5 NF): pool size 5, 16
completions per candidate, paired (the candidates of a stage share the draws of their free
layers, so draw noise cancels in their comparison), stages 1..5 one trunk (epoch) each and
stage 0 every trunk before them (so stage 0 is SPOS's uniform training), scoring as SPOS's
(BN recalibration on `calib_batches` x `calib_batch_size` train images, val accuracy on the
first `score_val_size` val images).

On NB201 the result is read from the table (`jaxml.nasbench.nb201`): the returned cell's true
accuracy and rank, every stage's candidates' true potentials (mean over all their completions)
against the supernet's estimates, the cell an exact-potential oracle would return, and SPOS's
ranking study of the final supernet (`jaxml.methods.pcnas_report`). Outputs: summary.json,
trunks.npz, ranking.json, plots/pcnas_stages.png, plots/rank_scatter.png.
"""

import dataclasses
import types

import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxml import configs, oneshot
from jaxml.experiment import PopulationRun
from jaxml.methods import pcnas_report, spos, spos_study
from jaxml.methods.pcnas_controller import PCNASController
from jaxml.nasbench import nb201
from jaxml.search.pcnas_pool import PartialModelPool, Pool
from jaxml.spaces import NB201Space
from jaxml.trunks import run_trunks, trunk_schedule

VARIANTS = ("smoke", "cpu")
# Fields with SPOS's names and meaning (`jaxml.methods.spos`): the supernet's scoring and the
# ranking study run through SPOS's code (`spos_study.PathScorer`, `ranking_archs`,
# `rank_metrics`), so both methods score paths and rank cells identically.
SHARED_WITH_SPOS = (
  "sub_batches",
  "affine",
  "trunk_epochs",
  "trunk_steps",
  "calib_batches",
  "calib_batch_size",
  "score_val_size",
  "paths_per_call",
  "rank_random",
  "rank_top",
  "dataset",
  "table_dir",
  "max_flops",
  "max_tries",
)


def pcnas_config(**overrides) -> ml_collections.ConfigDict:
  defaults = dict(spos.spos_config().to_dict())
  defaults = {k: defaults[k] for k in SHARED_WITH_SPOS}
  defaults.update(
    pool_size=5,  # P: partial models kept after each stage
    completions=16,  # uniform completions per candidate (its potential's sample)
    stage_trunks=1,  # trunks of each of the stages 1..L-1 (stage 0: every trunk before them)
    paths_per_call=64,  # paths per compiled scoring call (fixed: one compiled shape)
  )
  return ml_collections.ConfigDict({**defaults, **overrides})


def experiment(arg: str | None, name: str) -> ml_collections.ConfigDict:
  """SPOS's NB201 supernet setting (`spos.experiment`: data, model, optimiser, epochs) with the
  PC-NAS block; `cpu` / `smoke` are SPOS's `cpu` / `smoke` (one supernet) with a smaller pool."""
  v = configs.parse_variants(arg, VARIANTS, name=name, exclusive=[("smoke", "cpu")])
  c = spos.experiment("nb201", ",".join(sorted(v)) or None, name)
  c.method = "pcnas"
  c.pcnas = pcnas_config(**{k: c.spos[k] for k in SHARED_WITH_SPOS if k != "paths_per_call"})
  del c["spos"]
  c.population.size = 1
  if "cpu" in v:
    c.pcnas.update(pool_size=4, completions=8, paths_per_call=40)
  if "smoke" in v:
    c.pcnas.update(pool_size=2, completions=2, paths_per_call=8, rank_random=10, rank_top=4)
    c.update(num_steps=14, num_epochs=-1.0)
    c.pcnas.update(trunk_steps=2, trunk_epochs=0.0)
  return c


def _trunks_estimate(config) -> int | None:
  """The run's number of trunks from the config alone (None if the units differ)."""
  p = config.pcnas
  if config.num_steps > 0 and p.trunk_steps > 0:
    return -(-int(config.num_steps) // int(p.trunk_steps))
  if config.num_steps <= 0 and p.trunk_steps <= 0 and p.trunk_epochs > 0:
    return int(np.ceil(config.num_epochs / p.trunk_epochs - 1e-9))
  return None


def validate_config(config) -> None:
  p, check = config.pcnas, configs.check
  check(
    config.model.name == "nb201",
    f"pcnas searches the 'nb201' space: model.name must be 'nb201' (got {config.model.name!r})",
  )
  configs.validate_training_config(config)
  check(config.model.get("arch", "") == "", "pcnas trains the supernet: model.arch must be ''")
  check(config.model.dtype == "float32", "pcnas: the supernet is float32 only")
  check(config.population.size == 1, "pcnas trains one supernet: population.size = 1")
  check(config.data.val_size > 0, "pcnas scores paths on the val split: data.val_size > 0")
  for key in ("pool_size", "completions", "stage_trunks", "sub_batches", "paths_per_call"):
    check(int(p[key]) >= 1, f"pcnas.{key} must be >= 1, got {p[key]}")
  check(1 <= p.max_tries <= 100, f"pcnas.max_tries must be in 1..100, got {p.max_tries}")
  check(p.completions <= 4096, f"pcnas.completions must be at most 4096, got {p.completions}")
  check(p.pool_size <= 625, f"pcnas.pool_size must be at most 625, got {p.pool_size}")
  check(p.calib_batches >= 0 and p.calib_batch_size >= 1, "pcnas.calib_batches must be >= 0")
  check(
    p.calib_batches * p.calib_batch_size <= 1_000_000,
    "pcnas.calib_batches x calib_batch_size must be at most 1,000,000 images",
  )
  check(p.score_val_size >= 0, f"pcnas.score_val_size must be >= 0, got {p.score_val_size}")
  check(p.max_flops >= 0, f"pcnas.max_flops (MACs) must be >= 0, got {p.max_flops}")
  check(p.rank_random >= 10, f"pcnas.rank_random must be >= 10, got {p.rank_random}")
  check(p.rank_top >= 0, f"pcnas.rank_top must be >= 0, got {p.rank_top}")
  check(p.rank_random + p.rank_top <= 15625, "pcnas.rank_random + rank_top must be <= 15,625")
  check(p.trunk_steps > 0 or p.trunk_epochs > 0, "set pcnas.trunk_epochs or trunk_steps > 0")
  check(p.dataset in nb201.DATASETS, f"pcnas.dataset={p.dataset!r}; valid: {nb201.DATASETS}")
  check(
    config.batch_size % p.sub_batches == 0,
    f"batch_size={config.batch_size} must split into pcnas.sub_batches={p.sub_batches} parts",
  )
  trunks = _trunks_estimate(config)
  check(
    trunks is not None,
    "pcnas: give the trunk in the run's unit (pcnas.trunk_steps with num_steps, "
    "pcnas.trunk_epochs with num_epochs)",
  )
  need = (NB201Space().encoding_length - 1) * int(p.stage_trunks) + 1
  check(
    trunks >= need,
    f"pcnas: the run has {trunks} trunks; the 6 NB201 stages need at least {need} "
    f"(stage_trunks={p.stage_trunks} each for stages 1-5, >= 1 for stage 0)",
  )


def as_spos(config):
  """The view of `config` that SPOS's scoring code reads (`config.spos.<shared field>`)."""
  return types.SimpleNamespace(
    spos=config.pcnas, seed=config.seed, data=config.data, eval_batch_size=config.eval_batch_size
  )


def build_space(config, num_classes: int):
  """The NB201 space; with `pcnas.max_flops` > 0 its `is_valid` is that MACs limit."""
  m = config.model
  space = NB201Space(m.channels, m.cells_per_stage, num_classes, config.data.resolution)
  if not config.pcnas.max_flops:
    return space
  costs = oneshot.PathCosts.build(space)
  return oneshot.ConstrainedSpace(space, costs, max_flops=float(config.pcnas.max_flops))


@dataclasses.dataclass(frozen=True, eq=False)
class PoolPathSampler:
  """`SampledPath`'s sampler: the pool in `path_data` (`oneshot.PoolSampler`'s format) ->
  `PartialModelPool.sample_paths` (valid completions first when the space has a limit)."""

  search: PartialModelPool

  def __call__(self, key, n: int, data=None):
    p = data["pool"].shape[0]
    live = jnp.arange(p) < data["size"]
    pool = Pool(data["pool"], live, data["fixed"], jnp.zeros(p, jnp.float32))
    return self.search.sample_paths(key, pool, n)


def make_score_fn(config, run, space, holder: dict):
  """score(paths int32 [n, L]) -> val accuracy float64 [n] of the supernet in `holder['pop']`,
  by SPOS's scorer (per-path BN recalibration), `paths_per_call` paths per call (one compiled
  shape: the last call is padded by repeating its first path)."""
  scorer = spos_study.PathScorer(as_spos(config), run, space, None, None)
  chunk = int(config.pcnas.paths_per_call)

  def score(paths):
    scorer.pop = holder["pop"]
    paths = np.asarray(paths, np.int32)
    n = len(paths)
    padded = np.concatenate([paths, np.repeat(paths[:1], (-n) % chunk, axis=0)])
    out = [scorer(0, padded[i : i + chunk]) for i in range(0, len(padded), chunk)]
    return np.concatenate(out)[:n]

  return score


def supernet_run(config, workdir, controller, space, sampler) -> PopulationRun:
  """`spos_study.supernet_run` for the `pcnas` block (that one reads `config.spos`): a
  PopulationRun whose engine trains `SampledPath(SPOS's supernet build, sampler)`."""
  run = PopulationRun(config, workdir, controller, trunk="pcnas")
  net = spos_study.supernet_net(as_spos(config), space)
  run.use_model(oneshot.SampledPath(net, sampler, int(config.pcnas.sub_batches)))
  return run


def run(config, workdir: str) -> dict:
  p = config.pcnas
  table = nb201.load(p.table_dir or None)  # a missing table fails before anything is written
  search = PartialModelPool(build_space(config, 10), int(p.pool_size), int(p.max_tries))
  controller = PCNASController(search, int(p.completions), int(p.stage_trunks), config.seed)
  sampler = PoolPathSampler(search)
  run = supernet_run(config, workdir, controller, search.space, sampler)
  # The controller scores paths with the supernet as it is at each trunk end: the trunk loop
  # evaluates the population just before `tell`, so that call hands over the weights.
  holder, evaluate = {}, run.engine.evaluate

  def evaluate_and_keep(pop, split, hparams=None):
    holder["pop"] = pop
    return evaluate(pop, split, hparams)

  run.engine.evaluate = evaluate_and_keep
  trunk = run.trunk_steps
  num_trunks = len(trunk_schedule(run.total_steps, trunk))
  score_fn = make_score_fn(config, run, search.space, holder)
  truth = pcnas_report.table_truth(search.space, table, p.dataset)
  report = pcnas_report.Reporter(config, search, table, truth, score_fn, controller)
  controller.bind(score_fn, num_trunks, truth, report)
  return run_trunks(run, controller, trunk).summary
