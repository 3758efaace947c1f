"""The one-shot phases of `jaxml.methods.crnas`: a supernet trained on the trunk loop with one
sampled path per step (`jaxml.oneshot.SampledPath`), and the batched scorer of its paths (per-path
BN recalibration, then accuracy on the held-out split)."""

import dataclasses
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from jaxml import configs, oneshot
from jaxml.data import pipeline
from jaxml.experiment import PopulationRun
from jaxml.spaces.crnas import CRStageSpace
from jaxml.trunks import Keep, run_trunks


@dataclasses.dataclass(frozen=True, eq=False)
class BranchSampler:
  """One branch per stage, uniform and independent (CRNAS §3.2's stage supernet training)."""

  space: CRStageSpace

  def __call__(self, key, n: int, data=None):
    del data
    return self.space.sample_branches(key, n)


class PathController:
  """The trunk loop's view of one-shot training: hands out the path evaluated at trunk ends
  (`eval_encoding`, the baseline's) and keeps the copy; the last state it saw is the result."""

  name = "supernet"
  augment_fn = loss_fn = aux_init = None

  def __init__(self, eval_encoding: np.ndarray):
    self.eval_encoding = np.asarray(eval_encoding, np.int32)[None]

  def init(self, key):
    del key
    return {"trunks": np.int32(0)}

  def ask(self, state, key):
    del key
    return state, {"model": {"eval_encoding": self.eval_encoding}}, {}

  def tell(self, state, report):
    return {"trunks": np.int32(int(state["trunks"]) + 1)}, Keep(), {}

  def history(self, state) -> dict:
    return {}

  def summary(self, state, history, workdir) -> dict:
    return {}


def train_supernet(config, workdir: pathlib.Path, space, sampler, eval_encoding):
  """Trains `space`'s array build with paths from `sampler` in `workdir` (resumable); returns
  (summary, the final supernet variables, the run's data)."""
  controller = PathController(eval_encoding)
  run = PopulationRun(config, str(workdir), controller)
  val = (run.data.val.images, run.data.val.labels)
  run.use_model(oneshot.SampledPath(space.network(), sampler), eval_sets={"val": val})
  spe = run.engine.steps_per_epoch
  trunk = configs.steps("eval_every", config, spe, default=spe)
  result = run_trunks(run, controller, trunk)
  summary, pop = result.summary, jax.device_get(result.pop)
  variables = {"params": jax.tree.map(lambda x: x[0], pop.params)}
  variables["batch_stats"] = jax.tree.map(lambda x: x[0], pop.batch_stats)
  return summary, variables, run.data


def calibration_batches(config, data) -> np.ndarray | None:
  """uint8 [nb, bs, H, W, 3]: the first `calib_batches` train batches of a seeded order."""
  nb, bs = int(config.crnas.calib_batches), config.batch_size
  if nb == 0:
    return None
  order = np.asarray(pipeline.epoch_permutation(jax.random.key(config.seed), 0, nb * bs))
  n = int(data.train.labels.shape[0])
  idx = order % n
  return np.asarray(data.train.images)[idx].reshape(nb, bs, *data.train.images.shape[1:])


def scorer(config, data, net, variables):
  """score(encodings [K, L], eval_data) -> accuracy [K] with the supernet's weights."""
  evaluator = oneshot.classification_evaluator(data.num_classes, config.data.resolution)
  calib = calibration_batches(config, data)

  def score(encodings, eval_data):
    out = oneshot.score_paths(
      net,
      variables,
      jnp.asarray(encodings, jnp.int32),
      calib,
      eval_data,
      evaluator,
      resolution=config.data.resolution,
      paths_per_chunk=int(config.crnas.paths_per_chunk),
    )
    return np.asarray(out["accuracy"], np.float64)

  return score
