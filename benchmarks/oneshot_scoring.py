"""Candidates scored per second by a one-shot supernet: K paths per call vs one path per call.

SPOS scores every candidate with the supernet's shared weights after re-estimating its BN
statistics (`jaxml.oneshot.make_scorer`: reset, `--calib_batches` x `--calib_batch_size`
train-mode batches, then `--val` images evaluated). Here the same scorer runs (a) K paths in
ONE compiled call (vmap over the encodings, weights not mapped: every conv sees a K-times
larger batch) and (b) one path per call, K calls of the same compiled program, on the same
device. Reported: candidates/s of both, their ratio, and the compile time of each program.
The supernet is the NAS-Bench-201 array build at C 16, N 5, 32 px (the SPOS ranking study's),
randomly initialised (timing does not depend on the weights); images are synthetic uint8.

  python benchmarks/oneshot_scoring.py --out /tmp/bench/oneshot_scoring.json
  python benchmarks/oneshot_scoring.py --ks 1,8 --channels 8 --cells 1 --resolution 16
  python benchmarks/oneshot_scoring.py --quick   # seconds: C 2, N 1, 8 px, K = 1, 2
"""

import argparse
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402
from jaxml import evaluation, oneshot  # noqa: E402
from jaxml.errors import ConfigError  # noqa: E402
from jaxml.population import accepted_cpu_options  # noqa: E402
from jaxml.spaces import NB201Space  # noqa: E402

RECORD_KEYS = (
  "k",
  "batched_paths_per_s",
  "single_paths_per_s",
  "speedup",
  "batched_compile_s",
  "single_compile_s",
)


def parse_args(argv=None) -> argparse.Namespace:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--ks", type=common.int_list, default=[1, 8, 32, 128], help="paths per call")
  p.add_argument("--channels", type=int, default=16)
  p.add_argument("--cells", type=int, default=5, help="NB201 cells per stage (N)")
  p.add_argument("--resolution", type=int, default=32)
  p.add_argument("--calib_batches", type=int, default=4)
  p.add_argument("--calib_batch_size", type=int, default=128)
  p.add_argument("--val", type=int, default=500, help="val images scored per path")
  p.add_argument("--eval_batch_size", type=int, default=250)
  p.add_argument("--repeats", type=int, default=3, help="timed calls (median reported)")
  p.add_argument(
    "--fast_compile", action="store_true", help="XLA:CPU without LLVM optimisation (cheap compiles)"
  )
  p.add_argument("--quick", action="store_true", help="tiny sizes for a smoke test")
  p.add_argument("--out", default="", help="write the results as JSON here")
  args = p.parse_args(argv)
  if args.quick:
    args.ks, args.channels, args.cells, args.resolution = [1, 2], 2, 1, 8
    args.calib_batches, args.calib_batch_size, args.val, args.eval_batch_size = 1, 8, 16, 8
    args.repeats, args.fast_compile = 1, True
  if not args.ks or min(args.ks) < 1:
    raise ConfigError(f"--ks must be positive path counts, got {args.ks}")
  return args


def _timed(fn, repeats: int) -> float:
  """Median seconds of `repeats` blocked calls, after one untimed warm-up call (the first
  execution of a program allocates its buffers: ~2x slower measured on CPU)."""
  jax.block_until_ready(fn())
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - t0)
  return common.median(times)


def _compiled(scorer, *args):
  t0 = time.perf_counter()
  compiled = scorer.lower(*args).compile()
  return compiled, time.perf_counter() - t0


def main(argv=None) -> dict:
  args = parse_args(argv)
  space = NB201Space(args.channels, args.cells, 10, args.resolution)
  net = space.network()
  r = args.resolution
  images = common.synthetic_data(args.calib_batches * args.calib_batch_size + args.val, r)[0]
  calib = jnp.asarray(
    images[: -args.val].reshape(args.calib_batches, args.calib_batch_size, r, r, 3)
  )
  labels = np.random.default_rng(1).integers(0, 10, args.val).astype(np.int32)
  val = tuple(
    jnp.asarray(b)
    for b in evaluation.eval_batches(images[-args.val :], labels, args.eval_batch_size)
  )
  options = accepted_cpu_options() if args.fast_compile and jax.default_backend() == "cpu" else None
  init = lambda x: net.init(jax.random.key(0), x, encoding=jnp.zeros(6, jnp.int32))  # noqa: E731
  variables = jax.jit(init, compiler_options=options)(jnp.zeros((1, r, r, 3)))
  evaluator = oneshot.classification_evaluator(10, r)
  scorer = oneshot.make_scorer(net, evaluator, resolution=r, compiler_options=options)
  encs = space.sample(jax.random.key(2), max(args.ks))
  single, single_compile = _compiled(scorer, variables, encs[:1], calib, val)
  records = []
  for k in args.ks:
    if k == 1:  # the same program as one path per call
      batched, batched_compile = single, single_compile
    else:
      batched, batched_compile = _compiled(scorer, variables, encs[:k], calib, val)
    t_batched = _timed(lambda b=batched, k=k: b(variables, encs[:k], calib, val), args.repeats)
    t_single = _timed(
      lambda k=k: [single(variables, encs[i : i + 1], calib, val) for i in range(k)], args.repeats
    )
    rec = {
      "k": k,
      "batched_paths_per_s": k / t_batched,
      "single_paths_per_s": k / t_single,
      "speedup": t_single / t_batched,
      "batched_compile_s": batched_compile,
      "single_compile_s": single_compile,
    }
    records.append(rec)
    print(
      f"K={k}: {rec['batched_paths_per_s']:.3g} paths/s in one call, "
      f"{rec['single_paths_per_s']:.3g} one per call ({rec['speedup']:.2f}x)",
      flush=True,
    )
  header = ["K", "K per call (paths/s)", "1 per call (paths/s)", "speed-up", "compile s (K / 1)"]
  common.print_table(
    header,
    [
      [
        r_["k"],
        f"{r_['batched_paths_per_s']:.3g}",
        f"{r_['single_paths_per_s']:.3g}",
        f"{r_['speedup']:.2f}x",
        f"{r_['batched_compile_s']:.1f} / {r_['single_compile_s']:.1f}",
      ]
      for r_ in records
    ],
  )
  payload = {
    "benchmark": "oneshot_scoring",
    **common.environment(),
    "supernet": f"NB201 C {args.channels}, N {args.cells}, {r} px",
    "calibration_images": args.calib_batches * args.calib_batch_size,
    "val_images": args.val,
    "fast_compile": bool(args.fast_compile),
    "records": records,
  }
  common.write_json(args.out, payload)
  return payload


if __name__ == "__main__":
  main()
