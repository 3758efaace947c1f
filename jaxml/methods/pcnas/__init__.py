"""PC-NAS (Li et al., "Improving One-shot NAS by Suppressing the Posterior Fading", CVPR 2020,
arXiv 1910.02543) on the NAS-Bench-201 space: one supernet trained in stages while a partial
model pool shrinks the space, on the trunk loop.

The supernet is SPOS's (`jaxml.methods.spos`: the NB201 array build, one path per step through
`jaxml.oneshot.SampledPath`, same data, optimiser and epochs). Stage 0 samples paths uniformly
from the whole space; at the end of stage i the pool's partial models (first i layers fixed,
`jaxml.search.pcnas_pool`) are extended by every choice of layer i, each candidate's potential is
the mean val accuracy of `completions` uniform completions scored with the supernet's weights
after per-path BN recalibration (`jaxml.oneshot.val_scorer`, SPOS's setting, `paths_per_call`
paths per compiled call), paths
over `max_flops` excluded, and the top `pool_size` are kept; stage i + 1 samples its paths'
first i + 1 layers from the pool (`jaxml.methods.pcnas.controller`). After stage L-1 the pool
holds whole architectures, ranked; the first is the search's answer. "Layer" = one NB201 edge,
in `nb201_encoding.EDGES` order.

Choices (the paper's are not published): pool size 5, 16
completions per candidate, paired (the candidates of a stage share the draws of their free
layers, so draw noise cancels in their comparison), stages 1..5 one trunk (epoch) each and
stage 0 every trunk before them (so stage 0 is SPOS's uniform training), scoring as SPOS's
(BN recalibration on `calib_batches` x `calib_batch_size` train images, val accuracy on the
first `score_val_size` val images).

On NB201 the result is read from the table (`jaxml.nasbench.nb201`): the returned cell's true
accuracy and rank, every stage's candidates' true potentials (mean over all their completions)
against the supernet's estimates, the cell an exact-potential oracle would return, and SPOS's
ranking study of the final supernet (`jaxml.methods.pcnas.report`). Outputs: summary.json,
trunks.npz, ranking.json, plots/pcnas_stages.png, plots/rank_scatter.png.
"""

import dataclasses

import jax.numpy as jnp
import numpy as np

from jaxml import oneshot
from jaxml.methods.pcnas import report
from jaxml.methods.pcnas.configs import (  # noqa: F401
  SHARED_WITH_SPOS,
  VARIANTS,
  experiment,
  pcnas_config,
  validate_config,
)
from jaxml.methods.pcnas.controller import PCNASController
from jaxml.metrics.writers import write_json_atomic
from jaxml.nasbench import nb201
from jaxml.search.pcnas_pool import PartialModelPool, Pool
from jaxml.spaces import NB201Space
from jaxml.trunks import run_trunks, trunk_schedule


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


def run(config, workdir: str) -> dict:
  p = config.pcnas
  table = nb201.load(p.table_dir or None)  # a missing table fails before anything is written
  search = PartialModelPool(build_space(config, 10), int(p.pool_size), int(p.max_tries))
  net = oneshot.supernet_net(search.space, p.affine)
  run = oneshot.supernet_run(
    config, workdir, net, PoolPathSampler(search), sub_batches=p.sub_batches, trunk="pcnas"
  )
  num_trunks = len(trunk_schedule(run.total_steps, run.trunk_steps))
  scorer = oneshot.val_scorer(run, "pcnas", net, p.paths_per_call)
  truth = report.table_truth(search.space, table, p.dataset)
  controller = PCNASController(
    search, int(p.completions), int(p.stage_trunks), config.seed, scorer, num_trunks, truth
  )
  result = run_trunks(run, controller, run.trunk_steps)
  # The report scores the final supernet (`RunResult.pop`) and reads every stage's candidates
  # from the trunk history the loop saved.
  with np.load(run.history_path) as f:
    history = {k: f[k] for k in f.files}
  reporter = report.Reporter(config, search, table, truth, scorer, controller.ends)
  variables = oneshot.copy_variables(result.pop, 0)
  summary = result.summary | reporter(result.controller_state, history, run.workdir, variables)
  write_json_atomic(run.workdir / "summary.json", summary)
  return summary
