"""Train img/s of the proxy study's work against a PyTorch CPU reference of the same cells.

The reference (PyTorch CPU, 2 threads, channels-last, SGD, batch 128): NAS-Bench-201 cells at
C 8, N 1, 16 px average 5,150 train img/s over 24 stratified cells; the C 16, N 5, 32 px
ResNet-like cell trains at 374 img/s. Measured here, through the production `Engine`
(`benchmarks/architecture_builds.py`'s builders, default SGD + crop/flip, synthetic images):

  (a) C 8, N 1, 16 px: the ARRAY build, one population of the cells (encodings per copy), mapped
      by `vmap` (and `loop` if asked), and FIXED builds (one engine per cell, only its ops) of
      `--fixed_cells` of the cells, spread over them; img/s = images of one step of every copy
      / that round's time, i.e. the mean over the cells as the reference averages them;
  (b) C 16, N 5, 32 px, the ResNet-like cell (NB201's `|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|
      +|skip_connect~0|none~1|none~2|`), fixed build.

The cells are `proxy_study.select_archs` of the NAS-Bench-201 table (24, stratified, seed 0)
when the table is found, else 24 random cells. Compile time is reported apart from img/s.

  python benchmarks/proxy_study_throughput.py --out /tmp/bench/proxy_study_throughput.json
  python benchmarks/proxy_study_throughput.py --quick   # seconds: tiny sizes, 2 cells

Per cell, beside the PyTorch reference run on the same cells
(`benchmarks/pytorch_nb201_reference.py --out /tmp/bench/pytorch_nb201.json`): every one of the
24 cells as a fixed build through the Engine and as a bare `jax.jit` step, no array build:

  python benchmarks/proxy_study_throughput.py --mappings= --fixed_cells 24 --per_cell_plain \
    --no_resnet --pytorch_json /tmp/bench/pytorch_nb201.json --out /tmp/bench/per_cell.json
"""

import argparse
import json
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks import architecture_builds as ab  # noqa: E402
from benchmarks import common  # noqa: E402
from jaxml.errors import ConfigError, DataError  # noqa: E402
from jaxml.spaces import nb201_encoding as enc201  # noqa: E402

REFERENCE = {"cells": 5150.0, "resnet": 374.0}  # PyTorch CPU train img/s (the reference above)
RESNET_CELL = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|"


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--k", type=int, default=24, help="cells of the array-build population")
  parser.add_argument("--fixed_cells", type=int, default=3, help="cells timed as fixed builds")
  parser.add_argument("--mappings", default="vmap", help="array-build mappings (vmap,loop)")
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--no_resnet", action="store_true", help="skip (b), the C16 N5 32px cell")
  parser.add_argument("--table_dir", default="", help="NAS-Bench-201 table dir ('' = search)")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--fast_compile", action="store_true")
  parser.add_argument(
    "--per_cell_plain", action="store_true", help="time each fixed cell as a bare jax.jit too"
  )
  parser.add_argument(
    "--pytorch_json", default="", help="per-cell PyTorch rates (pytorch_nb201_reference.py)"
  )
  parser.add_argument("--out", default=None, help="write the records as JSON here")
  parser.add_argument("--quick", action="store_true", help="tiny sizes for a smoke test")
  common.add_timing_args(parser, steps=2, seconds=3.0, what="rounds")
  args = parser.parse_args(argv)
  args.windows = min(args.windows, 2)
  args.channels, args.cells_per_stage, args.image = 8, 1, 16
  args.resnet_size = (16, 5, 32)  # (b)'s C, N, px
  if args.quick:
    args.k, args.fixed_cells, args.batch, args.channels, args.image = 2, 1, 8, 2, 8
    args.steps, args.seconds, args.windows, args.fast_compile = 1, 0, 1, True
    args.resnet_size = (2, 1, 8)
  args.mappings = common.str_list(args.mappings)
  if not 1 <= args.fixed_cells <= args.k or args.batch < 1:
    raise ConfigError("need 1 <= --fixed_cells <= --k and --batch >= 1")
  return args


def study_cells(k: int, seed: int, table_dir: str) -> tuple[np.ndarray, str]:
  from jaxml.methods import proxy_study
  from jaxml.nasbench import nb201

  try:
    table = nb201.load(table_dir or None)
  except DataError:
    return ab.random_cells(k, seed), "random"
  return proxy_study.select_archs(table, k, seed)[0], "stratified (NB201 table)"


def timed(build, args) -> float:
  build.run(1)  # warm-up
  return common.median(
    common.timed_window(build, args.steps, args.seconds)[0] for _ in range(args.windows)
  )


def plain_step_rate(cell, args) -> tuple[float, float]:
  """(img/s, compile s) of the fixed build's train step as a bare `jax.jit` (flax apply,
  softmax cross-entropy, optax SGD + momentum; no Engine, no augmentation, one device-resident
  batch): the floor XLA:CPU's kernels set, apart from what the engine adds."""
  import jax
  import jax.numpy as jnp
  import optax

  model = ab.nb201_model(args, cell)
  rng = np.random.default_rng(args.seed)
  x = jnp.asarray(rng.random((args.batch, args.image, args.image, 3)), jnp.float32)
  y = jnp.asarray(rng.integers(0, 10, args.batch))
  variables = model.init(jax.random.PRNGKey(args.seed), x, train=False)
  tx = optax.sgd(0.1, momentum=0.9)

  def loss_fn(params, stats):
    logits, new = model.apply(
      {"params": params, "batch_stats": stats}, x, train=True, mutable=["batch_stats"]
    )
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), new["batch_stats"]

  @jax.jit
  def step(state):
    params, stats, opt = state
    (_, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, stats)
    updates, opt = tx.update(grads, opt, params)
    return optax.apply_updates(params, updates), stats, opt

  class Plain:  # duck-types common.Stepper for common.timed_window
    state = (variables["params"], variables["batch_stats"], tx.init(variables["params"]))

    def run(self, n):
      for _ in range(n):
        self.state = step(self.state)
      jax.block_until_ready(self.state)

  t0 = time.perf_counter()
  plain = Plain()
  plain.run(1)
  compile_s = time.perf_counter() - t0
  return args.batch / timed(plain, args), compile_s


def per_cell_rates(build, args) -> dict:
  """Each fixed cell timed alone: the arithmetic mean of the per-cell img/s (the round rate
  above is total images / total time, which the slowest cells dominate) and the range."""
  rates = []
  for part in build.parts:
    alone = ab.Build(build.name, build.mapping, [part], 0.0, 0.0, build.step)
    rates.append(alone.images_per_round() / timed(alone, args))
  lo, hi = min(rates), max(rates)
  print(f"  per-cell img/s: mean {np.mean(rates):,.0f}, min {lo:,.0f}, max {hi:,.0f}")
  return {
    "per_cell_mean_img_per_s": round(float(np.mean(rates)), 1),
    "per_cell_img_per_s": [round(r, 1) for r in rates],
  }


def per_cell_table(cells, engine_rates, args) -> list[dict]:
  """One row per cell: the Engine's fixed-build img/s, a bare `jax.jit` step's (if asked) and
  the PyTorch reference's for the same cell (if given), with their ratios."""
  reference = {}
  if args.pytorch_json:
    ref = json.loads(pathlib.Path(args.pytorch_json).read_text())
    reference = {r["arch"]: r["img_per_s"] for r in ref["records"]}
  rows = []
  for cell, rate in zip(cells, engine_rates, strict=True):
    arch = enc201.to_string(tuple(int(v) for v in cell))
    plain = plain_step_rate(cell, args)[0] if args.per_cell_plain else None
    torch_rate = reference.get(arch)
    rows.append(
      {
        "arch": arch,
        "engine_img_per_s": rate,
        "plain_jit_img_per_s": None if plain is None else round(plain, 1),
        "engine_vs_plain": None if plain is None else round(rate / plain, 3),
        "pytorch_img_per_s": torch_rate,
        "engine_vs_pytorch": None if torch_rate is None else round(rate / torch_rate, 3),
      }
    )
  fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
  common.print_table(
    ["cell", "engine img/s", "bare jit img/s", "engine/bare", "PyTorch img/s", "jaxml/PyTorch"],
    [
      [r["arch"], f"{r['engine_img_per_s']:,.0f}", fmt(r["plain_jit_img_per_s"], ",.0f"),
       fmt(r["engine_vs_plain"], ".2f"), fmt(r["pytorch_img_per_s"], ",.0f"),
       fmt(r["engine_vs_pytorch"], ".2f")]
      for r in rows
    ],
  )  # fmt: skip
  return rows


def main(argv=None) -> dict:
  args = parse_args(argv)
  env = common.environment()
  t_start = time.perf_counter()
  print(f"device: {env['device']}, jax {env['jax_version']}, {env['date']}, load {env['load_avg']}")
  cells, source = study_cells(args.k, args.seed, args.table_dir)
  records = []

  def record(setting, build, step_s, ref):
    rate = build.images_per_round() / step_s
    records.append(
      {
        "setting": setting,
        "build": f"{build.name}/{build.mapping}",
        "cells": len(build.parts) if build.name == "fixed" else args.k,
        "compile_s": round(build.compile_s + build.init_s, 1),
        "img_per_s": round(rate, 1),
        "reference_img_per_s": ref,
        "vs_reference": round(rate / ref, 3),
      }
    )
    print(f"  {setting} {build.name}/{build.mapping}: {rate:,.0f} img/s", flush=True)

  setting = f"C{args.channels} N1 {args.image}px"
  for mapping in args.mappings:
    b = ab.array_build(cells, mapping, args)
    record(setting, b, timed(b, args), REFERENCE["cells"])
  spread = np.linspace(0, args.k - 1, args.fixed_cells).round().astype(int)
  b = ab.fixed_builds(cells[spread], args)
  record(setting, b, timed(b, args), REFERENCE["cells"])
  records[-1].update(per_cell_rates(b, args))
  per_cell = per_cell_table(cells[spread], records[-1]["per_cell_img_per_s"], args)
  if not args.no_resnet:
    args.channels, args.cells_per_stage, args.image = args.resnet_size
    cell = enc201.from_string(RESNET_CELL)
    b = ab.fixed_builds(cell[None], args)
    setting = f"C{args.channels} N{args.cells_per_stage} {args.image}px ResNet cell"
    record(setting, b, timed(b, args), REFERENCE["resnet"])
    rate, compile_s = plain_step_rate(cell, args)
    records.append(
      {
        "setting": setting,
        "build": "fixed/plain jax.jit (no Engine)",
        "cells": 1,
        "compile_s": round(compile_s, 1),
        "img_per_s": round(rate, 1),
        "reference_img_per_s": REFERENCE["resnet"],
        "vs_reference": round(rate / REFERENCE["resnet"], 3),
      }
    )
    print(f"  {setting}, plain jax.jit: {rate:,.0f} img/s", flush=True)
  env_after = common.environment()
  header = ["setting", "build", "cells", "compile+init s", "img/s", "per-cell mean img/s",
            "PyTorch img/s", "ratio"]  # fmt: skip
  rows = [
    [r["setting"], r["build"], r["cells"], r["compile_s"], f"{r['img_per_s']:,.0f}",
     f"{r.get('per_cell_mean_img_per_s', r['img_per_s']):,.0f}",
     f"{r['reference_img_per_s']:,.0f}", f"{r['vs_reference']:.2f}"]
    for r in records
  ]  # fmt: skip
  common.print_table(header, rows)
  wall = time.perf_counter() - t_start
  print(f"cells: {source}; load avg before / after: {env['load_avg']} / {env_after['load_avg']}")
  print(f"wall time {wall:.0f} s")
  payload = {
    "benchmark": "proxy_study_throughput",
    "argv": sys.argv[1:] if argv is None else list(argv),
    "cells": [enc201.to_string(tuple(c)) for c in cells],
    "cell_source": source,
    "load_avg_before": env["load_avg"],
    "load_avg_after": env_after["load_avg"],
    "wall_s": round(wall, 1),
    "records": records,
    "per_cell": per_cell,
    **env,
  }
  common.write_json(args.out, payload)
  return payload


if __name__ == "__main__":
  main()
