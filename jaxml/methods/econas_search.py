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

Parent selection, mutation, promotion and aging are the ask/tell search
`jaxml.search.hierarchical_evolution.HierarchicalEvolution` (pure, jittable); this file trains
what it asks and tells it the fitness. Cycle 0 trains K random networks (the initial population).

Fitness is the top-1 accuracy on a held-out val split of the train set (`data.val_size`), at the
end of each stage; a network's fitness is the best over its stages (official record). The
official code validates on the CIFAR-10 *test* set (`dset.CIFAR10(train=False)` in
search/train.py); here the test set is never read by the search.

State on disk (`workdir`): `networks/` holds, per cycle, the trained population with Orbax
(`jaxml.checkpoint.Checkpointer`, per-array checksums): every network's state is slot j of the
checkpoint of the cycle it was last trained in (kept for max_age + 1 cycles, as long as a live
network may need it). `checkpoints/` holds the search state after every cycle: the pools
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
import ml_collections
import numpy as np

from jaxml import checkpoint, configs, preemption, training
from jaxml.experiment import PopulationRun, Timer
from jaxml.metrics import plots  # noqa: F401  (selects matplotlib's Agg backend)
from jaxml.models import SPACE_MODELS
from jaxml.nasbench import nb201
from jaxml.search.hierarchical_evolution import HierarchicalEvolution
from jaxml.spaces import DARTSSpace, EcoNASSpace, NB201Space

VARIANTS = ("smoke", "random")  # `random`: random children on the same schedule (the baseline)
STAGES = 3


def econas_config(**overrides) -> ml_collections.ConfigDict:
  """The `config.econas` block; defaults are the official search/main.py settings."""
  defaults = dict(
    cycles=100,  # cycles after the initial population
    parents=(6, 5, 5),  # children's parents from P_E, P_2E, P_3E
    promote=(8, 4),  # promoted from P_E, P_2E
    tournament_divisor=4,  # tournament size floor(n / divisor) + 1
    max_age=10,  # cycles without training before a network leaves the pools
    random_children=False,  # True: the random-search baseline on the same schedule
    table_dir="",  # NAS-Bench-201 table ('' = the data search order); nb201 only
  )
  return ml_collections.ConfigDict({**defaults, **overrides})


def base_config(model: str) -> ml_collections.ConfigDict:
  """The official search/train.py recipe on `model`'s array build, official pools."""
  c = configs.training_config("econas_search", model)
  c.optim.update(lr=0.1, momentum=0.9, nesterov=False, weight_decay=3e-4, grad_clip=5.0)
  c.econas = econas_config()
  c.population.size = 28
  c.population.mapping = "auto"
  c.batch_size = 384
  c.eval_batch_size = 1000
  c.data.val_size = 5000
  c.data.resolution = 8
  c.num_epochs = 60.0  # 3 stages of E = 20
  c.log_every_steps = 100
  c.progress = False
  return c


def shrink_for_smoke(c: ml_collections.ConfigDict) -> None:
  """K 4 (1 + 1 + 0 parents, 1 + 1 promotions), 3 cycles of 2 steps, vmap (one compile)."""
  c.econas.update(cycles=3, parents=(1, 1, 0), promote=(1, 1), max_age=3)
  c.population.update(size=4, mapping="vmap", fast_compile=True)
  c.data.update(val_size=500, sample_ratio=0.02)
  c.update(batch_size=32, eval_batch_size=500, num_steps=6)


def search_space(config):
  """The space of `config.model` at the proxy's macro (channels, cells, data.resolution)."""
  m, r = config.model, config.data.resolution
  if m.name == "nb201":
    return NB201Space(channels=m.channels, cells_per_stage=m.cells_per_stage, input_size=r)
  if m.name == "darts_cells":
    return DARTSSpace(
      channels=m.channels, layers=m.layers, stem_multiplier=m.stem_multiplier, input_size=r
    )
  return EcoNASSpace(
    channels=m.channels,
    cells_per_stage=m.cells_per_stage,
    num_nodes=m.num_nodes,
    stem_multiplier=m.stem_multiplier,
    input_size=r,
  )


def make_algorithm(config) -> HierarchicalEvolution:
  e = config.econas
  return HierarchicalEvolution(
    search_space(config),
    parents=tuple(int(x) for x in e.parents),
    promote=tuple(int(x) for x in e.promote),
    tournament_divisor=int(e.tournament_divisor),
    max_age=int(e.max_age),
    random_children=bool(e.random_children),
  )


def validate_config(config) -> None:
  configs.validate_training_config(config)
  check = configs.check
  e = config.econas
  check(
    config.model.name in SPACE_MODELS and config.model.arch == "",
    f"econas_search trains K different architectures as one population: model.name must be a "
    f"search space's array build ({', '.join(SPACE_MODELS)}) with model.arch='', got "
    f"{config.model.name!r} arch={config.model.get('arch', None)!r}",
  )
  check(e.cycles >= 1, f"econas.cycles must be >= 1, got {e.cycles}")
  check(
    config.data.val_size > 0,
    "econas_search ranks networks on a val split held out of the train set (never the test "
    "set): set data.val_size > 0",
  )
  check(
    config.num_steps <= 0 or config.num_steps % STAGES == 0,
    f"num_steps={config.num_steps} is the 3-stage schedule (3E): make it a multiple of 3",
  )
  algorithm = make_algorithm(config)  # ConfigError for bad parents / promote / divisor / age
  check(
    config.population.size == algorithm.ask_size,
    f"population.size={config.population.size} must equal sum(econas.parents) + "
    f"sum(econas.promote) = {algorithm.ask_size}: every cycle trains that many networks",
  )


def _init_keys(seed: int, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(param keys, rng keys) of networks `ids`: a function of the seed and the network id only."""
  pkeys = np.stack(
    [jax.random.key_data(training.param_key(seed * 7919 + 1000 + int(i))) for i in ids]
  )
  base = jax.random.fold_in(jax.random.key(seed), 2)
  rkeys = np.stack([jax.random.key_data(jax.random.fold_in(base, int(i))) for i in ids])
  return pkeys, rkeys


def _abstract(tree):
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), tree)


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
    saved, _ = networks.restore(int(cycle), {"pop": _abstract(pop)})
    saved_leaves = [np.asarray(x) for x in jax.tree.leaves(jax.device_get(saved["pop"]))]
    for j in np.flatnonzero(promoted & (saved_in == cycle)):
      for dst, src in zip(host_leaves, saved_leaves, strict=True):
        dst[j] = src[slot_of_row[rows[j]]]
  return engine.pop.put_copies(jax.tree.unflatten(treedef, host_leaves))


def _answer(history: dict, upto: int):
  """(cycle, slot) of the search's answer after cycle `upto`: the best val accuracy among the
  trainings of the highest stage reached so far (P_3E once any network got there)."""
  stage, val = history["stage"][: upto + 1], history["val"][: upto + 1]
  top = stage.max()
  score = np.where(stage == top, val, -np.inf)
  c, j = np.unravel_index(int(np.argmax(score)), score.shape)
  return int(c), int(j)


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
  timer = Timer(meta["wall_time_s"])
  ask, tell = jax.jit(algorithm.ask), jax.jit(algorithm.tell)
  saved_step = int(search.cycle) * stage_steps
  with preemption.catch_stop_signals():
    for c in range(int(search.cycle), rounds):
      asked, cands = ask(search, jax.random.fold_in(key, c))
      cands = np.asarray(cands)
      rows, promoted = np.asarray(asked.slot_rows), np.asarray(asked.slot_promoted)
      child_rank = np.cumsum(~promoted) - 1
      ids = np.where(
        promoted, np.asarray(asked.network)[rows], int(asked.num_networks) + child_rank
      )
      hparams = {"model": {"encoding": cands}}
      pop = build_population(engine, networks, asked, slot_of_row, ids, hparams, config.seed)
      device_hparams = run.pop.put_copies(hparams)
      t0 = Timer()
      # Global steps run on across cycles, so each cycle reads new epochs of the data order;
      # each copy's learning rate follows its own optimizer step count (restored on promotion).
      for s in range(c * stage_steps, (c + 1) * stage_steps):
        signum = preemption.requested()
        if signum is not None:  # the cycle in flight is redone on resume
          run.close()
          networks.close()
          raise preemption.Preempted(signum, saved_step, run.workdir)
        pop, metrics = engine.step(pop, device_hparams, {}, s)
      jax.block_until_ready(pop)
      meta["train_s"] += t0.elapsed
      val = engine.evaluate(pop, "val", hparams)
      acc, loss = np.asarray(val["accuracy"], np.float64), np.asarray(val["loss"], np.float64)
      fitness = np.where(np.isfinite(acc) & np.isfinite(loss), acc, 0.0)
      # Weights first, then the search state that points at them: a kill in between reruns
      # this cycle, which overwrites its weights with the same values.
      networks.save(c, {"pop": pop}, {"cycle": c, "network": ids.tolist()}, force=True)
      stage_before = np.where(promoted, np.asarray(asked.stage)[rows], 0)
      search = tell(asked, cands, jnp.asarray(fitness, jnp.float32))
      slot_of_row[rows] = np.arange(k)
      history["encoding"][c], history["network"][c] = cands, ids
      history["stage"][c], history["val"][c] = stage_before + 1, fitness
      meta["cycle_wall_s"].append(timer.elapsed)
      meta["wall_time_s"] = timer.elapsed
      saved_step = (c + 1) * stage_steps
      train_loss = np.asarray(jax.device_get(metrics["loss"]), np.float64)
      ac, aj = _answer(history, c)
      run.writer.write_scalars(
        saved_step,
        {
          "cycle": c,
          "train_loss": float(np.nanmean(train_loss)),
          "val_accuracy": float(fitness.mean()),
          "val_accuracy_best": float(fitness.max()),
          "promoted": int(promoted.sum()),
          "pool_sizes": [int(np.sum(np.asarray(search.stage) == p)) for p in (1, 2, 3)],
          "answer_val": float(history["val"][ac, aj]),
          "answer_stage": int(history["stage"][ac, aj]),
        },
      )
      state = {"search": search, "slot_of_row": slot_of_row, "history": history}
      run.save(saved_step, state, meta)
      if preemption.requested() is not None:
        run.stop_if_requested(saved_step)
  networks.close()
  return run.finish(_summary(config, run, space, table, history, meta, search, stage_steps))


def _summary(config, run, space, table, history, meta, search, stage_steps) -> dict:
  rounds, k = history["val"].shape
  images = stage_steps * config.batch_size  # per training of one network for one stage
  # Forward FLOPs per image (2 per multiply-add) of each trained architecture at the proxy.
  flops = 2.0 * np.asarray(space.flops(history["encoding"].reshape(-1, space.encoding_length)))
  cost = np.cumsum(images * flops.reshape(rounds, k).sum(axis=1))
  best_val, best_gt = [], []
  for c in range(rounds):
    ac, aj = _answer(history, c)
    best_val.append(float(history["val"][ac, aj]))
    if table is not None:
      best_gt.append(float(table.query(history["encoding"][ac, aj])))
  c, j = _answer(history, rounds - 1)
  enc = history["encoding"][c, j]
  summary = {
    "method": config.method,
    "space": space.name,
    "children": "random" if config.econas.random_children else "mutation",
    "population_size": k,
    "cycles": rounds - 1,
    "stage_steps": stage_steps,
    "stage_epochs": stage_steps / run.engine.steps_per_epoch,
    "networks_trained": int(search.num_networks),
    "trainings": int(rounds * k),
    "trainings_per_stage": [int(np.sum(history["stage"] == s)) for s in (1, 2, 3)],
    "found_architecture": space.to_string(enc),
    "found_encoding": enc.tolist(),
    "found_network": int(history["network"][c, j]),
    "found_stage": int(history["stage"][c, j]),
    "found_val_accuracy": float(history["val"][c, j]),
    "train_images": int(rounds * k * images),
    "cost_images_x_flops": float(cost[-1]),
    "cost_per_cycle": cost.tolist(),
    "answer_val_per_cycle": best_val,
    "cycle_wall_s": meta["cycle_wall_s"],
    "wall_time_s": meta["wall_time_s"],
    "train_time_s": meta["train_s"],
  }
  if table is not None:
    summary["found_test_accuracy_nb201"] = best_gt[-1]
    summary["answer_test_accuracy_nb201_per_cycle"] = best_gt
    summary["nb201_optimum"] = table.optimum("cifar10")
    # Each network once (a promoted one appears in up to three cycles).
    _, first = np.unique(history["network"].reshape(-1), return_index=True)
    trained = history["encoding"].reshape(-1, space.encoding_length)[first]
    summary["mean_test_accuracy_nb201_of_networks"] = float(np.mean(table.query(trained)))
  np.savez(run.workdir / "search.npz", **history)
  curves = {"val accuracy (search)": best_val}
  if table is not None:
    curves["NAS-Bench-201 test accuracy (/100)"] = [g / 100 for g in best_gt]
  _plot_search(cost, curves, run.workdir / "plots" / "search.png")
  return summary


def _plot_search(cost: np.ndarray, curves: dict, path) -> None:
  """Best-so-far (the search's answer after each cycle) against cumulative cost."""
  import matplotlib.pyplot as plt  # the Agg backend is selected by jaxml.metrics.plots

  fig, ax = plt.subplots(figsize=(6, 4))
  for label, ys in curves.items():
    ax.plot(cost, ys, marker="." if len(ys) < 40 else None, label=label)
  ax.set_xscale("log")
  ax.set_xlabel("training images x forward FLOPs (cumulative)")
  ax.set_ylabel("answer after each cycle")
  ax.grid(alpha=0.3)
  ax.legend()
  fig.tight_layout()
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=100)
  plt.close(fig)
