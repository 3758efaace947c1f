"""EcoNAS hierarchical proxy evolutionary search (Zhou et al., "EcoNAS: Finding Proxies for
Economical Neural Architecture Search", CVPR 2020, Sec. 4; official code DongzhanZhou/EcoNAS
search/main.py and search/train.py).

Every network trains in a reduced setting (the proxy: `model.channels` / cells, `data.resolution`,
`data.sample_ratio`) on ONE cosine schedule of 3E epochs (`num_epochs` = 3E; official: E = 20 of
60), in stages of E epochs. Networks live in three pools by stages trained: P_E, P_2E, P_3E. One
cycle trains K = sum(parents) + sum(promote) networks as ONE population of different
architectures (the space's array build, encodings per copy in `hparams['model']['encoding']`):

    (1) children: parents drawn from the pools by tournament and mutated (official: 6 / 5 / 5
        parents from P_E / P_2E / P_3E, tournament size floor(n/4)+1); they train their first
        stage from fresh weights and enter P_E;
    (2) promotion: the top of P_E and of P_2E (official: 8 and 4) are restored from their own
        checkpoints - weights, BN statistics, optimizer state (momentum and its step count, which
        drives the schedule) and step - and train E more epochs, on into P_2E / P_3E;
    (3) networks not trained for `max_age` cycles (official: 10) leave the pools.

`econas.build='fixed'` (NAS-Bench-201) trains the cycle's networks one by one through their
fixed builds instead, each a one-copy engine (`fixed.py`: ~4x faster steps on a CPU, a compile
per architecture); `econas.warm_start` (a zero-cost measure) makes the initial networks the
best-scored of `warm_start_pool` random cells (`warm_start.py`).

Parent selection, mutation, promotion and aging are the ask/tell search
`jaxml.search.hierarchical_evolution.HierarchicalEvolution` (pure, jittable); this file trains
what it asks and tells it the fitness. Cycle 0 is the initial population: `econas.initial_size`
random networks (official: 16). The population keeps its K copies in cycle 0 too (one compiled
step); the K - initial_size inactive slots train throwaway random networks that the search never
sees: they get network id -1, stage 0 and val NaN in search.npz and count in no cost but the
wall time.

Fitness is the top-1 accuracy on a held-out val split of the train set (`data.val_size`), at the
end of each stage; a network's fitness is the best over its stages (official record). The
official code validates on the CIFAR-10 *test* set (`dset.CIFAR10(train=False)` in
search/train.py); here the test set is never read by the search.

State on disk (`workdir`): `networks/` holds (array build; fixed builds: one directory per
network, its last two stages, `fixed.py`), per cycle, the trained population with Orbax
(`jaxml.checkpoint.Checkpointer`, per-array checksums): every network's state is slot j of the
checkpoint of the cycle it was last trained in (kept for max_age + 1 cycles, as long as a live
network may need it). The search's archive row of a network is its handle from creation to
removal: `updated[row]` and `slot_of_row[row]` find its weights, so a row is only given to a child
once its network is removed (`HierarchicalEvolution` allocates free rows; checked here).
`checkpoints/` holds the search state after every cycle: the pools
(encodings, stages, fitness, ages), where each network's weights are, and the history. The RNG
of cycle c is fold_in(seed key, c), so the cycle counter is the RNG state. A run killed at any
point (kill -9) restarts the cycle it was in and ends bit-identical to an uninterrupted one; a
SIGTERM / SIGINT stops at the next step and exits 128 + signal with the last cycle's checkpoint.

Outputs: summary.json (found architecture = best fitness in P_3E over the whole search, as the
official scanresult.py; its NAS-Bench-201 200-epoch CIFAR-10 test accuracy for `model.name`
'nb201'; networks trained; total cost as training images x forward FLOPs of each trained
architecture and as wall time), search.npz (every training: cycle, slot, network id, stage,
encoding, val accuracy), plots/search.png (best-so-far vs cost). `econas.random_children` is the
baseline: random architectures on the same pools, promotions and schedule, same cost.
"""

import jax
import jax.numpy as jnp
import numpy as np

from jaxml import checkpoint, preemption, training
from jaxml.engine import init_seed
from jaxml.experiment import PopulationRun, Timer
from jaxml.methods.econas_search import report as econas_report
from jaxml.methods.econas_search import warm_start
from jaxml.methods.econas_search.configs import (  # noqa: F401  (the method's public names)
  BUILDS,
  STAGES,
  VARIANTS,
  base_config,
  econas_config,
  make_algorithm,
  search_space,
  shrink_for_smoke,
  validate_config,
)
from jaxml.methods.econas_search.fixed import FixedCycles
from jaxml.nasbench import nb201


def _init_keys(seed: int, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(param keys, rng keys) of networks `ids`: a function of the seed and the network id only."""
  ids = np.maximum(ids, 0)  # an inactive slot (id -1) trains a throwaway copy: any key will do
  pkeys = np.stack([jax.random.key_data(training.param_key(init_seed(seed, int(i)))) for i in ids])
  base = jax.random.fold_in(jax.random.key(seed), 2)
  rkeys = np.stack([jax.random.key_data(jax.random.fold_in(base, int(i))) for i in ids])
  return pkeys, rkeys


def build_population(engine, networks, search, slot_of_row, ids, hparams, seed):
  """The population of one cycle: fresh copies for children, promoted networks restored.

  `search` is the state `ask` returned: slot j trains row `slot_rows[j]`; a promoted row's
  network was last trained in cycle `updated[row]`, as slot `slot_of_row[row]` of that cycle's
  checkpoint in `networks`, whose whole copy state (params, BN statistics, optimizer state with
  its step count, step, rng) it continues from.
  """
  pkeys, rkeys = _init_keys(seed, ids)
  pop = engine.init_from_keys(pkeys, rkeys, hparams)
  promoted = np.asarray(search.slot_promoted)
  if not promoted.any():
    return pop
  rows = np.asarray(search.slot_rows)
  saved_in = np.asarray(search.updated)[rows]
  host = jax.tree.map(np.array, jax.device_get(pop))
  host_leaves, treedef = jax.tree.flatten(host)
  for cycle in np.unique(saved_in[promoted]):
    saved, _ = networks.restore(int(cycle), {"pop": checkpoint.abstract_tree(pop)})
    saved_leaves = [np.asarray(x) for x in jax.tree.leaves(jax.device_get(saved["pop"]))]
    for j in np.flatnonzero(promoted & (saved_in == cycle)):
      for dst, src in zip(host_leaves, saved_leaves, strict=True):
        dst[j] = src[slot_of_row[rows[j]]]
  return engine.pop.put_copies(jax.tree.unflatten(treedef, host_leaves))


def _check_rows(asked, rows, active, child, cycle) -> None:
  """Refuses an ask whose rows would lose a live network: its row points at its weights."""
  live = np.asarray(asked.stage)[rows[child]] > 0
  if len(np.unique(rows[active])) < active.sum() or (rows[child] < 0).any() or live.any():
    raise RuntimeError(
      f"cycle {cycle}: the search's archive gave a child a row in use (rows {rows.tolist()}); "
      "a live network would lose its checkpointed weights"
    )


def run(config, workdir: str) -> dict:
  e = config.econas
  algorithm = make_algorithm(config)
  space = algorithm.space
  # The table is read before anything is written: a missing table refuses the run cleanly.
  table = nb201.load(e.table_dir or None) if config.model.name == "nb201" else None
  run = PopulationRun(config, workdir)
  engine = run.engine
  stage_steps = run.total_steps // STAGES
  k, length, rounds = algorithm.ask_size, space.encoding_length, int(e.cycles) + 1
  fixed = e.build == "fixed"
  if fixed:
    trainer = FixedCycles(run, space, lambda ids: _init_keys(config.seed, ids))
  else:
    networks = checkpoint.Checkpointer(run.workdir / "networks", max_to_keep=int(e.max_age) + 1)
  key = jax.random.fold_in(jax.random.key(config.seed), 5)
  fresh = {
    "search": algorithm.init(jax.random.fold_in(key, 2**31 - 1)),
    "slot_of_row": np.zeros((algorithm.capacity,), np.int32),
    "history": {
      "encoding": np.full((rounds, k, length), -1, np.int32),
      "network": np.full((rounds, k), -1, np.int32),
      "stage": np.zeros((rounds, k), np.int32),
      "val": np.full((rounds, k), np.nan, np.float32),
    },
  }
  _, state, meta = run.restore_or(fresh, {"wall_time_s": 0.0, "train_s": 0.0, "cycle_wall_s": []})
  search = state["search"]
  slot_of_row = np.array(state["slot_of_row"])
  history = {name: np.array(v) for name, v in state["history"].items()}
  warm = warm_start.initial_networks(config, space, run) if e.warm_start else None
  timer = Timer(meta["wall_time_s"])
  ask, tell = jax.jit(algorithm.ask), jax.jit(algorithm.tell)
  saved_step = int(search.cycle) * stage_steps

  def check_stop():
    signum = preemption.requested()
    if signum is not None:  # the cycle in flight is redone on resume
      run.close()
      if not fixed:
        networks.close()
      raise preemption.Preempted(signum, saved_step, run.workdir)

  with preemption.catch_stop_signals():
    for c in range(int(search.cycle), rounds):
      asked, cands = ask(search, jax.random.fold_in(key, c))
      cands = np.array(cands)
      if c == 0 and warm is not None:  # the initial population: the zero-cost picks
        cands[: len(warm)] = warm
      rows, promoted = np.asarray(asked.slot_rows), np.asarray(asked.slot_promoted)
      active = np.asarray(asked.slot_active)
      child = active & ~promoted
      _check_rows(asked, rows, active, child, c)
      child_rank = np.cumsum(child) - 1
      ids = np.where(
        promoted, np.asarray(asked.network)[rows], int(asked.num_networks) + child_rank
      )
      ids = np.where(active, ids, -1)
      steps = range(c * stage_steps, (c + 1) * stage_steps)
      t0 = Timer()
      if fixed:
        acc, loss, train_loss = trainer.train(c, asked, cands, ids, steps, check_stop)
        meta["train_s"] += t0.elapsed
      else:
        hparams = {"model": {"encoding": cands}}
        pop = build_population(engine, networks, asked, slot_of_row, ids, hparams, config.seed)
        device_hparams = run.pop.put_copies(hparams)
        # Global steps run on across cycles, so each cycle reads new epochs of the data order;
        # each copy's learning rate follows its own optimizer step count (restored on promotion).
        for s in steps:
          check_stop()
          pop, metrics = engine.step(pop, device_hparams, {}, s)
        jax.block_until_ready(pop)
        meta["train_s"] += t0.elapsed
        val = engine.evaluate(pop, "val", hparams)
        acc, loss = np.asarray(val["accuracy"], np.float64), np.asarray(val["loss"], np.float64)
        train_loss = np.asarray(jax.device_get(metrics["loss"]), np.float64)
      fitness = np.where(np.isfinite(acc) & np.isfinite(loss), acc, 0.0)
      if not fixed:
        # Weights first, then the search state that points at them: a kill in between reruns
        # this cycle, which overwrites its weights with the same values.
        networks.save(c, {"pop": pop}, {"cycle": c, "network": ids.tolist()}, force=True)
      stage_before = np.where(promoted, np.asarray(asked.stage)[rows], 0)
      search = tell(asked, cands, jnp.asarray(fitness, jnp.float32))
      slot_of_row[rows[active]] = np.flatnonzero(active)
      history["encoding"][c], history["network"][c] = cands, ids
      history["stage"][c] = np.where(active, stage_before + 1, 0)
      history["val"][c] = np.where(active, fitness, np.nan)
      meta["cycle_wall_s"].append(timer.elapsed)
      meta["wall_time_s"] = timer.elapsed
      saved_step = (c + 1) * stage_steps
      ac, aj = econas_report.answer(history, c)
      run.writer.write_scalars(
        saved_step,
        {
          "cycle": c,
          "train_loss": float(np.nanmean(train_loss[active])),
          "val_accuracy": float(fitness[active].mean()),
          "val_accuracy_best": float(fitness[active].max()),
          "promoted": int(promoted.sum()),
          "pool_sizes": [int(np.sum(np.asarray(search.stage) == p)) for p in (1, 2, 3)],
          "answer_val": float(history["val"][ac, aj]),
          "answer_stage": int(history["stage"][ac, aj]),
        },
      )
      state = {"search": search, "slot_of_row": slot_of_row, "history": history}
      run.save(saved_step, state, meta)
      if fixed:  # after the state that dropped them is saved: a resume never needs them
        trainer.forget(np.asarray(search.network)[np.asarray(search.stage) > 0])
      if preemption.requested() is not None:
        run.stop_if_requested(saved_step)
  if not fixed:
    networks.close()
  summary = econas_report.summary(config, run, space, table, history, meta, search, stage_steps)
  summary["build"] = e.build
  summary["warm_start"] = warm_start.summary(run.workdir)
  return run.finish(summary)
