"""The one supernet-training run of one-shot NAS, shared by SPOS, PC-NAS and CRNAS.

Single Path One-Shot (Guo et al., ECCV 2020, Sec. 3.2, Eq. 4): the supernet's weights W are
trained by minimising E_{a ~ Gamma}[L(N(a, W(a)))], one path a drawn per step (per sub-batch), so
only that path's weights get gradient. Here:

- `SampledPath(net, sampler, sub_batches=1)`: a space's array build with a path drawn per train
  step, the model the engine trains (the variables are `net`'s own tree).
- `supernet_net(space, affine)`: the array build with the supernet's BN affine setting.
- `supernet_run(config, workdir, net, sampler, ...)`: the `PopulationRun` whose engine trains
  `SampledPath(net, sampler)`; the caller hands it to `run_trunks` with its controller.
- `ProbeController`: the trunk-loop controller of plain supernet training: hands every copy the
  path evaluated on val at the trunk end (`eval_encoding`: a fixed one or a fresh draw) and keeps
  the copies (the paths trained are drawn inside the step).
- `copy_variables(pop, i)`: copy i's {'params', 'batch_stats'}, what the path scorer reads;
  `val_scorer(run, block, net, paths_per_call)`: SPOS's scoring setting from a config block.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxml import evaluation
from jaxml.errors import ConfigError
from jaxml.experiment import SPLITS, PopulationRun
from jaxml.oneshot.scoring import PathScorer, calibration_batches, classification_evaluator
from jaxml.trunks import Controller


@dataclasses.dataclass(frozen=True, eq=False)
class SampledPath:
  """`net` (a space's array build) with a path drawn per train step (per sub-batch).

  Only the Flax entry points the engine uses are provided (`init`, `apply`); the variables are
  `net`'s own. With `sub_batches` S > 1 the batch is cut into S equal parts, part i runs path i
  and the BN running statistics are updated S times in sequence (one update per path).
  """

  net: Any
  sampler: Any
  sub_batches: int = 1

  def init(self, rngs, x, train: bool = False, encoding=None, eval_encoding=None, path_data=None):
    del path_data
    enc = encoding if encoding is not None else eval_encoding
    if enc is None:
      raise ConfigError("SampledPath.init needs an `encoding` or `eval_encoding` model input")
    return self.net.init(rngs, x, encoding=enc, train=train)

  def apply(
    self,
    variables,
    x,
    train: bool = False,
    mutable=False,
    rngs=None,
    encoding=None,
    eval_encoding=None,
    path_data=None,
  ):
    if encoding is not None or not train:
      enc = encoding if encoding is not None else eval_encoding
      if enc is None:
        raise ConfigError(
          "SampledPath evaluates one path per call: pass `eval_encoding` (hparams['model'])"
        )
      return self.net.apply(variables, x, encoding=enc, train=train, mutable=mutable, rngs=rngs)
    if not rngs or "path" not in rngs:
      raise ConfigError("SampledPath draws its paths from the 'path' rng: apply(..., rngs=...)")
    s = self.sub_batches
    if x.shape[0] % s:
      raise ConfigError(f"the batch ({x.shape[0]}) must split into sub_batches={s} equal parts")
    paths = self.sampler(rngs["path"], s, path_data)
    other = {k: v for k, v in rngs.items() if k != "path"}
    params = {k: v for k, v in variables.items() if k != "batch_stats"}
    stats = variables.get("batch_stats", {})
    outs = []
    for i, part in enumerate(jnp.split(x, s)):
      out = self.net.apply(
        {**params, "batch_stats": stats},
        part,
        encoding=paths[i],
        train=True,
        mutable=["batch_stats"],
        rngs={k: jax.random.fold_in(v, i) for k, v in other.items()} if s > 1 else other,
      )
      outs.append(out[0])
      stats = out[1].get("batch_stats", {})
    logits = outs[0] if s == 1 else jnp.concatenate(outs)
    return (logits, {"batch_stats": stats}) if mutable else logits


def supernet_net(space, affine: bool | None = None):
  """`space`'s array build; with `affine` set, its searchable ops' BN scale / bias on or off
  (SPOS trains them without affine by default) where the build has that switch."""
  net = space.network()
  if affine is None or not hasattr(net, "affine"):
    return net
  return net.clone(affine=bool(affine))


def supernet_run(
  config,
  workdir,
  net,
  sampler,
  *,
  sub_batches: int = 1,
  trunk: str = "",
  eval_splits: tuple[str, ...] = SPLITS,
) -> PopulationRun:
  """A PopulationRun whose engine trains `SampledPath(net, sampler, sub_batches)`.

  `trunk` names the config block whose `trunk_steps` / `trunk_epochs` give `run.trunk_steps`
  ('' when the caller picks the trunk); `eval_splits` are the splits the engine evaluates. The
  probe controller has no engine hooks, so it is not needed to build the run."""
  run = PopulationRun(config, str(workdir), trunk=trunk, eval_splits=eval_splits)
  run.use_model(SampledPath(net, sampler, int(sub_batches)))
  return run


def copy_variables(pop, copy: int = 0) -> dict:
  """Copy `copy`'s {'params', 'batch_stats'} of a population (one supernet, not mapped)."""
  return jax.tree.map(lambda x: x[copy], {"params": pop.params, "batch_stats": pop.batch_stats})


class ProbeController(Controller):
  """Trunk-loop controller of supernet training: at each trunk, every copy gets the probe path
  evaluated on val at the trunk's end (`eval_encoding`); the copies are kept. `probe` is a fixed
  encoding int32 [L] (CRNAS: the baseline's) or a sampler `probe(key, K) -> [K, L]` (SPOS: a
  fresh random path per copy, a progress signal only)."""

  def __init__(self, probe, population_size: int = 1, name: str = "supernet"):
    self.probe, self.k, self.name = probe, int(population_size), name

  def ask(self, state, key):
    if callable(self.probe):
      paths = np.asarray(self.probe(key, self.k), np.int32)
    else:
      paths = np.repeat(np.asarray(self.probe, np.int32)[None], self.k, 0)
    return state, {"model": {"eval_encoding": paths}}, {}


def val_scorer(run: PopulationRun, block: str, net, paths_per_call: int) -> PathScorer:
  """SPOS's scoring setting (Sec. 3.3), read from the config block `block` of `run` (SPOS's and
  PC-NAS's share the field names): BN recalibration on `calib_batches` x `calib_batch_size`
  training images of a seeded order, then accuracy on the first `score_val_size` val images (0:
  all), `paths_per_call` paths per compiled call."""
  config, d = run.config, run.data
  s = config[block]
  order = np.random.default_rng([config.seed, 20]).permutation(d.train.labels.shape[0])
  calib = calibration_batches(d.train.images, s.calib_batches, s.calib_batch_size, order)
  m = s.score_val_size or d.val.labels.shape[0]
  batches = evaluation.eval_batches(d.val.images[:m], d.val.labels[:m], config.eval_batch_size)
  return PathScorer(
    net,
    classification_evaluator(d.num_classes, config.data.resolution),
    calib=calib,
    eval_data=tuple(jnp.asarray(b) for b in batches),
    resolution=config.data.resolution,
    paths_per_call=int(paths_per_call),
    compiler_options=run.pop.compiler_options,
  )
