"""The networks of a cycle trained one by one through their FIXED builds (`econas.build='fixed'`).

The array build (the default) trains a cycle's K architectures as one population: one compile,
but every candidate op of every edge is computed and `vmap` turns each conv into a grouped conv.
On a 2-core CPU a NAS-Bench-201 cell at C 8, N 1, 16 px trains ~4x faster through its fixed build
(only its ops, BENCHMARKS.md "array build vs fixed builds"), at the price of one compile (~4 s)
per architecture: for stages of thousands of steps the fixed builds win.

Each network is one copy of its own engine (`PopulationRun.engine_for`), initialised from the
same keys as its array-build slot would be (`_init_keys`: seed and network id), trained for the
stage's steps at the same global steps (so it reads the same batches), scored on val, and saved
in its own checkpoint directory `networks/<id>/` with the stage as the step. A promoted network
restores its last stage from there (weights, BN statistics, optimizer state and step). Two stages
are kept, so a cycle redone after a kill still finds the stage it started from; directories of
networks that left the pools are deleted once the search state that drops them is saved.
"""

from __future__ import annotations

import collections
import shutil

import jax
import numpy as np

from jaxml import checkpoint
from jaxml.models import model_from_config
from jaxml.population import Population

# Engines (compiled steps) cached by architecture: a promoted network trains again one or two
# cycles after its last stage, so the cache holds about three cycles' networks (3 K of the CPU
# recipe) to skip its recompile (~5 s of a ~15 s stage there); each holds its own device copy of
# the train images (~40 MB at a quarter of CIFAR-10).
ENGINES_KEPT = 24


class FixedCycles:
  """Trains each network of a cycle alone through its fixed build; see the module docstring."""

  def __init__(self, run, space, init_keys):
    """`run`: the search's `PopulationRun`; `space`: the search space (`to_string` names a
    network's fixed build); `init_keys(ids)`: (param keys, rng keys) of networks `ids`."""
    self.run, self.space, self.init_keys = run, space, init_keys
    self.root = run.workdir / "networks"
    self._engines = collections.OrderedDict()
    self._population = Population(1, "vmap", fast_compile=run.config.population.fast_compile)

  def engine(self, encoding):
    """The one-copy engine of the architecture `encoding` (cached, least recently used out)."""
    arch = self.space.to_string(np.asarray(encoding))
    if arch in self._engines:
      self._engines.move_to_end(arch)
      return self._engines[arch]
    model_cfg = {**self.run.config.model.to_dict(), "arch": arch}
    model = model_from_config(model_cfg, self.run.data.num_classes)
    engine = self.run.engine_for(model, population=self._population)
    self._engines[arch] = engine
    if len(self._engines) > ENGINES_KEPT:
      self._engines.popitem(last=False)
    return engine

  def _checkpointer(self, network: int) -> checkpoint.Checkpointer:
    return checkpoint.Checkpointer(self.root / f"{int(network):06d}", max_to_keep=2)

  def train(self, cycle, asked, cands, ids, steps, check_stop):
    """Trains the cycle's active slots for global steps `steps`; returns per-slot (val accuracy,
    val loss, last train loss), NaN for inactive slots. `check_stop()` runs before every step
    (it raises to stop the run; the cycle is redone on resume)."""
    k = len(ids)
    acc, loss, train_loss = (np.full((k,), np.nan) for _ in range(3))
    promoted, active = np.asarray(asked.slot_promoted), np.asarray(asked.slot_active)
    rows = np.asarray(asked.slot_rows)
    stage_before = np.where(promoted, np.asarray(asked.stage)[rows], 0)
    for j in np.flatnonzero(active):
      engine = self.engine(cands[j])
      pkeys, rkeys = self.init_keys(ids[j : j + 1])
      pop = engine.init_from_keys(pkeys, rkeys, {})
      with self._checkpointer(ids[j]) as ckpt:
        if promoted[j]:
          saved, _ = ckpt.restore(int(stage_before[j]), {"pop": checkpoint.abstract_tree(pop)})
          pop = engine.pop.put_copies(jax.device_get(saved["pop"]))
        for s in steps:
          check_stop()
          pop, metrics = engine.step(pop, {}, {}, s)
        val = engine.evaluate(pop, "val")
        meta = {"cycle": int(cycle), "network": int(ids[j])}
        ckpt.save(int(stage_before[j]) + 1, {"pop": pop}, meta, force=True)
      acc[j], loss[j] = float(val["accuracy"][0]), float(val["loss"][0])
      train_loss[j] = float(np.asarray(jax.device_get(metrics["loss"]))[0])
    return acc, loss, train_loss

  def forget(self, live_networks) -> None:
    """Deletes the checkpoints of networks that left the pools (call after the search state that
    dropped them is saved: a resume never needs them again)."""
    live = {int(n) for n in live_networks}
    if not self.root.exists():
      return
    for d in self.root.iterdir():
      if d.name.isdigit() and int(d.name) not in live:
        shutil.rmtree(d, ignore_errors=True)
