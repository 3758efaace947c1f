"""Copies that differ in architecture: one array-build population vs K fixed builds.

K random NAS-Bench-201 cells (`jaxml.spaces.NB201Space`) at a proxy size are trained two ways,
both through the production `jaxml.engine.Engine`:

(a) the ARRAY build (`get_model('nb201')`, arch ''): ONE population of K copies, copy k with
    encoding k in `hparams['model']['encoding']`; one program (every candidate op of every edge
    is computed and the chosen one selected), mapped by 'loop' (the CPU default: the K copies are
    unrolled in one jit, so XLA still compiles K supernets) and by 'vmap' (one batched supernet);
(b) K FIXED builds (`get_model('nb201', arch=<cell string>)`): K separate K = 1 engines, each
    computing only its cell's ops; K programs, K compiles.

Measured per build: compile seconds (ahead-of-time `lower(...).compile()` of each train step, as
`benchmarks/common.py` does; trace + lowering + XLA), init seconds (`Engine.init_population`,
its jit compile included: (a) compiles one init, (b) K), and the steady-state aggregate img/s
over the K copies (for (b) one step of each of the K engines in turn; median of timed windows,
interleaved between the builds so load drift hits both alike). From these, the wall time of
training every cell for E epochs of the 45k-image CIFAR-10 train split (batch B per copy, so
45000 // B steps per copy and epoch) is projected as compile + init + E x steps x step time,
for E in `--epochs`; the cheapest build per E is reported.

  python benchmarks/architecture_builds.py --out /tmp/architecture_builds.json
  python benchmarks/architecture_builds.py --k 4 --mappings loop --windows 2

The data are synthetic uint8 images at the proxy resolution (`common.synthetic_data`, 8 batches
per copy, fed at their own size); the optimizer is the default SGD + Nesterov + cosine config
and the augmentation the default crop + flip, as `python -m jaxml.main` runs.
"""

import argparse
import dataclasses
import pathlib
import sys
import time
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402
from jaxml import configs, training  # noqa: E402
from jaxml.data import default_data_config, pipeline  # noqa: E402
from jaxml.engine import Engine  # noqa: E402
from jaxml.errors import ConfigError  # noqa: E402
from jaxml.models import get_model  # noqa: E402
from jaxml.population import Population  # noqa: E402
from jaxml.spaces import NB201Space  # noqa: E402
from jaxml.spaces import nb201_encoding as enc201  # noqa: E402

TRAIN_SPLIT = 45_000  # CIFAR-10 train images left after the 5k validation split
MAPPINGS = ("loop", "vmap", "scan")
RECORD_KEYS = (
  "build",
  "mapping",
  "k",
  "compiles",
  "compile_s",
  "init_s",
  "step_ms",
  "img_per_s",
  "total_s",
  "device",
  "date",
)


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--k", type=int, default=8, help="number of cells (copies)")
  parser.add_argument("--channels", type=int, default=8, help="NB201 C of the proxy")
  parser.add_argument("--cells_per_stage", type=int, default=1, help="NB201 N of the proxy")
  parser.add_argument("--image", type=int, default=16, help="input side (multiple of 4)")
  parser.add_argument("--batch", type=int, default=64, help="images per copy per step")
  parser.add_argument(
    "--mappings", default="loop,vmap", help="mappings of the array-build population"
  )
  parser.add_argument("--epochs", default="1,5,20", help="run lengths (epochs) to project")
  common.add_timing_args(parser, what="rounds")
  parser.add_argument("--seed", type=int, default=0, help="seed of the random cells")
  parser.add_argument(
    "--fast_compile", action="store_true", help="populations with population.fast_compile"
  )
  parser.add_argument("--out", default=None, help="write the records as JSON here")
  parser.add_argument(
    "--quick",
    action="store_true",
    help="smoke run (K=2, C=2, 8x8, batch 4, fast_compile, 1 short window): ~1-2 min on 2 CPU "
    "cores, the NB201 compiles (tests stub the network)",
  )
  args = parser.parse_args(argv)
  if args.quick:
    args.k, args.channels, args.image, args.batch = 2, 2, 8, 4
    args.steps, args.seconds, args.windows, args.fast_compile = 1, 0.0, 1, True
  args.mappings, args.epochs = common.str_list(args.mappings), common.int_list(args.epochs)
  for m in args.mappings:
    if m not in MAPPINGS:
      raise ConfigError(f"--mappings: unknown mapping {m!r}; valid: {', '.join(MAPPINGS)}")
  if args.k < 1 or args.batch < 1 or args.steps < 1 or args.windows < 1:
    raise ConfigError("--k, --batch, --steps and --windows must be >= 1")
  if not args.epochs or min(args.epochs) < 1:
    raise ConfigError(f"--epochs must be positive integers, got {args.epochs}")
  if args.k > enc201.NUM_OPS**enc201.NUM_EDGES:
    raise ConfigError(f"--k {args.k} exceeds the {enc201.NUM_OPS**enc201.NUM_EDGES} NB201 cells")
  # The space checks the proxy's fields (positive C and N, image a multiple of 4).
  NB201Space(args.channels, args.cells_per_stage, common.NUM_CLASSES, args.image)
  return args


def random_cells(k: int, seed: int) -> np.ndarray:
  """int32[k, 6]: k distinct uniform NB201 cells, none all-`none` (a constant network)."""
  rng = np.random.default_rng(seed)
  cells: list[tuple[int, ...]] = []
  while len(cells) < k:
    cell = tuple(int(v) for v in rng.integers(0, enc201.NUM_OPS, enc201.NUM_EDGES))
    if cell not in cells and any(cell):
      cells.append(cell)
  return np.asarray(cells, np.int32)


def make_engine(model, k: int, mapping: str, args) -> Engine:
  """An `Engine` of `model` for k copies on synthetic data (8 batches per copy)."""
  pop = Population(k, mapping, fast_compile=args.fast_compile)
  n = 8 * args.batch
  optim = configs.optim_config()
  steps_per_epoch = pipeline.steps_per_epoch(n, args.batch)
  schedule = training.make_lr_schedule(optim, steps_per_epoch, 1000 * steps_per_epoch)
  return Engine(
    pop,
    model,
    training.make_optimizer(optim, schedule),
    train=common.synthetic_data(n, args.image, args.seed),
    batch_size=args.batch,
    eval_batch_size=args.batch,
    num_classes=common.NUM_CLASSES,
    resolution=args.image,
    augment=default_data_config().augment,
    seed=args.seed,
  )


@dataclasses.dataclass
class Part:
  """One engine with its compiled train step, live state and per-copy hparams."""

  engine: Engine
  compiled: Any
  state: Any
  hparams: Any


@dataclasses.dataclass
class Build:
  """One way of training the K cells; `run(n)` does n rounds (one step of every engine).

  Duck-types `common.Stepper` for `common.timed_window`.
  """

  name: str
  mapping: str
  parts: list[Part]
  compile_s: float
  init_s: float
  step: int = 0

  def run(self, n: int) -> None:
    for _ in range(n):
      for part in self.parts:
        inputs = part.engine.step_inputs(part.hparams, {}, self.step)
        # The state is donated: always keep the returned one.
        part.state, _ = part.compiled(part.state, inputs)
      self.step += 1
    jax.block_until_ready([part.state for part in self.parts])

  def images_per_round(self) -> int:
    return sum(part.engine.images_per_step() for part in self.parts)


def setup(engine: Engine, hparams: dict) -> tuple[Part, float, float]:
  """(part, compile s, init s): the engine's population initialised and its step compiled."""
  t0 = time.perf_counter()
  state = jax.block_until_ready(engine.init_population(hparams=hparams))
  init_s = time.perf_counter() - t0
  hp = engine.pop.put_copies(hparams)
  t0 = time.perf_counter()
  compiled = engine.train_step.lower(state, engine.step_inputs(hp, {}, 0)).compile()
  return Part(engine, compiled, state, hp), time.perf_counter() - t0, init_s


def nb201_model(args, cell=None):
  """The registry's NB201 network at the proxy size: array build (cell None) or fixed build."""
  arch = "" if cell is None else enc201.to_string(tuple(int(v) for v in cell))
  fields = dict(channels=args.channels, cells_per_stage=args.cells_per_stage, arch=arch)
  return get_model("nb201", common.NUM_CLASSES, **fields)


def array_build(cells: np.ndarray, mapping: str, args) -> Build:
  """(a) One population of the K cells, encodings as per-copy model inputs."""
  engine = make_engine(nb201_model(args), len(cells), mapping, args)
  part, compile_s, init_s = setup(engine, {"model": {"encoding": cells}})
  return Build("array", mapping, [part], compile_s, init_s)


def fixed_builds(cells: np.ndarray, args) -> Build:
  """(b) K engines of one copy, each the fixed build of its cell."""
  parts, compile_s, init_s = [], 0.0, 0.0
  for cell in cells:
    part, c_s, i_s = setup(make_engine(nb201_model(args, cell), 1, "loop", args), {})
    parts.append(part)
    compile_s, init_s = compile_s + c_s, init_s + i_s
    print(f"  fixed {enc201.to_string(tuple(cell))}: compile {c_s:.1f} s", flush=True)
  return Build("fixed", "loop", parts, compile_s, init_s)


def macs(cells: np.ndarray, args) -> tuple[float, float]:
  """(mean MACs per image of the fixed cells, MACs per image of the array build)."""
  space = NB201Space(args.channels, args.cells_per_stage, common.NUM_CLASSES, args.image)
  fixed = float(np.mean(space.flops(cells)))
  # Costs add over edges: the supernet = skeleton + every op on every edge.
  per_op = [space.flops(np.full(enc201.NUM_EDGES, o)) for o in range(enc201.NUM_OPS)]
  return fixed, float(sum(per_op) - (enc201.NUM_OPS - 1) * per_op[0])


def main(argv=None) -> dict:
  args = parse_args(argv)
  env = common.environment()
  print(
    f"device: {env['device']} ({env['backend']}), jax {env['jax_version']}, {env['date']}, "
    f"load avg {env['load_avg']}",
    flush=True,
  )
  cells = random_cells(args.k, args.seed)
  builds = []
  for mapping in args.mappings:
    builds.append(array_build(cells, mapping, args))
    print(f"  array/{mapping}: compile {builds[-1].compile_s:.1f} s", flush=True)
  builds.append(fixed_builds(cells, args))
  for b in builds:
    b.run(1)  # warm-up
  windows: dict[str, list] = {f"{b.name}/{b.mapping}": [] for b in builds}
  for _ in range(args.windows):  # interleaved, so slow load drift hits every build alike
    for b in builds:
      windows[f"{b.name}/{b.mapping}"].append(common.timed_window(b, args.steps, args.seconds))
  env_after = common.environment()
  steps_per_epoch = TRAIN_SPLIT // args.batch
  fixed_macs, array_macs = macs(cells, args)
  records = []
  for b in builds:
    step_s = common.median(w[0] for w in windows[f"{b.name}/{b.mapping}"])
    totals = {
      str(e): round(b.compile_s + b.init_s + e * steps_per_epoch * step_s, 1) for e in args.epochs
    }
    records.append(
      {
        "build": b.name,
        "mapping": b.mapping,
        "k": args.k,
        "compiles": len(b.parts),
        "compile_s": round(b.compile_s, 2),
        "init_s": round(b.init_s, 2),
        "step_ms": round(1e3 * step_s, 2),
        "img_per_s": round(b.images_per_round() / step_s, 1),
        "macs_per_image": round(fixed_macs if b.name == "fixed" else array_macs),
        "total_s": totals,
        "channels": args.channels,
        "cells_per_stage": args.cells_per_stage,
        "image": args.image,
        "batch_per_copy": args.batch,
        "steps_per_epoch": steps_per_epoch,
        "fast_compile": args.fast_compile,
        "cells": [enc201.to_string(tuple(c)) for c in cells],
        **env,
      }
    )
  header = ["build", "mapping", "compiles", "compile s", "init s", "round ms", "img/s"]
  header += ["MACs/img (M)"] + [f"total {e} ep (min)" for e in args.epochs]
  rows = [
    [
      "array (1 population)" if r["build"] == "array" else f"fixed ({r['k']} engines)",
      r["mapping"],
      r["compiles"],
      f"{r['compile_s']:.1f}",
      f"{r['init_s']:.1f}",
      f"{r['step_ms']:.1f}",
      f"{r['img_per_s']:,.0f}",
      f"{r['macs_per_image'] / 1e6:.2f}",
      *[f"{r['total_s'][str(e)] / 60:.1f}" for e in args.epochs],
    ]
    for r in records
  ]
  common.print_table(header, rows)
  winners = {str(e): min(records, key=lambda r: r["total_s"][str(e)]) for e in args.epochs}
  for e, r in winners.items():
    print(f"{e} epoch(s): cheapest is {r['build']}/{r['mapping']} ({r['total_s'][e] / 60:.1f} min)")
  print(f"load avg before / after: {env['load_avg']} / {env_after['load_avg']}")
  payload = {
    "benchmark": "architecture_builds",
    "argv": sys.argv[1:] if argv is None else list(argv),
    "backend": env["backend"],
    "load_avg_before": env["load_avg"],
    "load_avg_after": env_after["load_avg"],
    "train_split": TRAIN_SPLIT,
    "winners": {e: f"{r['build']}/{r['mapping']}" for e, r in winners.items()},
    "records": records,
  }
  common.write_json(args.out, payload)
  return payload


if __name__ == "__main__":
  main()
