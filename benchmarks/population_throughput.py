"""Aggregate images/s of a K-copy population vs K sequential single-copy runs, per mapping.

For each model, K and mapping ('vmap' | 'loop'; 'scan' on request, see DEFAULT_MAPPINGS;
`jaxml.population`) this times one
population step of K copies, each on a batch of `--batch` images (K x batch images; as with the
default population.same_batch=True the copies read the same examples, each with its own
augmentation), and, interleaved window by window under the same load, K steps of a K = 1
population (the sequential baseline: running the K copies one after another). Both are the real
`training.make_train_step` mapped by `Population` with the state donated, on synthetic uint8
data resident on device (see `benchmarks/common.py`). Reported: ratio = population img/s /
sequential img/s (> 1: the population is faster than K separate runs), compile times apart.

Models: 'resnet20' (He et al. 2016, 32x32 input, batch 64 per copy by default) and 'tiny' =
`tiny_cnn` width 8 fed 16x16 images directly (the data are generated at 16x16 and
`resolution=16`, so `normalize` does not resize: the EcoNAS resolution proxy's resize would add
the same per-image cost to both sides); 'resnet18' (batch 128) is available but not in the
default list (for GPU windows: the ResNet-18 K = 8 target). On a CPU backend the big models are
capped by default, ResNet-20 at K <= 8 and ResNet-18 at K <= 2 (a K = 32 ResNet-20 population
takes minutes per step on 2 cores); `--cpu_max_k N` sets both caps to N, 0 lifts them.

  python benchmarks/population_throughput.py --out /tmp/population.json
  python benchmarks/population_throughput.py --models tiny --ks 8,32 --mappings loop
  python benchmarks/population_throughput.py --devices 8 --models tiny --out /tmp/pop8.json

`--devices N` splits the host CPU into N virtual XLA devices (`jax_num_cpu_devices`) so the
copy axis is sharded with `shard_map` over a (copy, data) mesh; the N devices still share the
same physical cores.
"""

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jax  # noqa: E402

from benchmarks import common  # noqa: E402
from jaxml.errors import ConfigError  # noqa: E402
from jaxml.population import resolve_mapping  # noqa: E402

KS = (1, 2, 4, 8, 16, 32)
MAPPINGS = ("vmap", "loop", "scan")
# The default sweep leaves 'scan' out: on XLA:CPU a conv inside `lax.map` runs ResNet-20 at 0.04x
# the sequential speed (6.5 vs 170 img/s, BENCHMARKS.md), which alone pushed the sweep past 15
# minutes. It stays selectable (`--mappings scan`): it compiles one copy's graph once for any K,
# the mapping to measure where compile time, not step time, bounds a short run.
DEFAULT_MAPPINGS = ("vmap", "loop")
# name -> (registry name, model fields, input side, default batch per copy). ResNet-20 uses batch
# 64 per copy so that its K <= 8 sweep (vmap included) stays within minutes on 2 CPU cores.
MODELS = {
  "resnet20": ("resnet20", {}, 32, 64),
  "tiny": ("tiny_cnn", {"width": 8}, 16, 128),
  "resnet18": ("resnet18", {}, 32, 128),
}
CPU_MAX_K = {"resnet20": 8, "resnet18": 2}  # default caps on a CPU backend
QUICK_MODEL = ("tiny_cnn", {"width": 2}, 8, 4)
SEQUENTIAL_MAPPING = "loop"  # a K = 1 'loop' population is exactly one unmapped copy
RECORD_KEYS = (
  "k",
  "mapping",
  "model",
  "img_per_s",
  "sequential_img_per_s",
  "ratio",
  "compile_s",
  "device",
  "date",
)


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--models", default="tiny,resnet20", help=f"from {', '.join(MODELS)}")
  parser.add_argument("--ks", default=",".join(map(str, KS)), help="population sizes K")
  parser.add_argument(
    "--mappings", default=",".join(DEFAULT_MAPPINGS), help="any of vmap, loop, scan"
  )
  parser.add_argument(
    "--batch", type=int, default=0, help="images per copy per step (0: resnet20 64, tiny 128)"
  )
  parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
  # The sequential baseline does K x --steps per window.
  common.add_timing_args(parser, steps=1, seconds=1.0, what="population steps")
  parser.add_argument(
    "--cpu_max_k",
    type=int,
    default=-1,
    help=f"on a CPU backend, skip big-model populations above this K (default {CPU_MAX_K}; "
    "0: no cap)",
  )
  parser.add_argument(
    "--devices",
    type=int,
    default=0,
    help="N > 0: use N virtual CPU devices (set before any JAX use)",
  )
  parser.add_argument("--out", default=None, help="write the records as JSON here")
  parser.add_argument(
    "--quick",
    action="store_true",
    help="smoke run in seconds (tiny_cnn width 2 at 8x8, batch 4, K=2, "
    "1 step, 1 window), for tests",
  )
  args = parser.parse_args(argv)
  if args.quick:
    args.models, args.ks = "quick", "2"
    args.steps, args.seconds, args.windows = 1, 0.0, 1
  args.models, args.ks = common.str_list(args.models), common.int_list(args.ks)
  args.mappings = common.str_list(args.mappings)
  for name in args.models:
    if name not in MODELS and not (args.quick and name == "quick"):
      raise ConfigError(f"--models: unknown model {name!r}; valid: {', '.join(MODELS)}")
  for m in args.mappings:
    if m not in MAPPINGS:
      raise ConfigError(f"--mappings: unknown mapping {m!r}; valid: {', '.join(MAPPINGS)}")
  if not args.ks or min(args.ks) < 1:
    raise ConfigError(f"--ks must be positive integers, got {args.ks}")
  if args.steps < 1 or args.windows < 1 or args.batch < 0:
    raise ConfigError("--steps and --windows must be >= 1 and --batch >= 0")
  return args


def set_devices(n: int) -> None:
  """Splits the host CPU into n XLA devices; must run before JAX initialises its backends."""
  if n <= 0:
    return
  try:
    jax.config.update("jax_num_cpu_devices", n)
  except RuntimeError as e:
    raise ConfigError(
      f"--devices {n}: JAX is already initialised in this process ({e}); run the script in a "
      "fresh process."
    ) from e
  if jax.default_backend() != "cpu" or jax.device_count() != n:
    raise ConfigError(
      f"--devices {n} needs the CPU backend; got {jax.device_count()} "
      f"{jax.default_backend()} devices (set JAX_PLATFORMS=cpu)."
    )


def model_ks(name: str, args, backend: str) -> tuple[list[int], list[int]]:
  """(Ks to run, Ks skipped by the CPU cap) for model `name`."""
  cap = CPU_MAX_K.get(name, 0) if args.cpu_max_k < 0 else args.cpu_max_k
  if backend != "cpu" or name not in CPU_MAX_K or cap == 0:
    return list(args.ks), []
  return [k for k in args.ks if k <= cap], [k for k in args.ks if k > cap]


def model_setup(name: str, args):
  """(registry name, input side, batch per copy, setup(k, mapping) -> Stepper) of model `name`."""
  registry_name, fields, image, batch = QUICK_MODEL if name == "quick" else MODELS[name]
  batch = args.batch or batch
  # The quick model exists for smoke runs: compile it without XLA:CPU's optimisation passes.
  setup = lambda k, mapping: common.population_setup(
    registry_name,
    k=k,
    mapping=mapping,
    batch=batch,
    image=image,
    dtype=args.dtype,
    fast_compile=name == "quick",
    **fields,
  )
  return registry_name, image, batch, setup


def measure_k(name: str, k: int, mappings, seq, args, env: dict, auto: str):
  """Records of K = k copies of model `name` per mapping against the K = 1 stepper `seq`, timed
  in interleaved windows; and notes on the mappings skipped."""
  registry_name, image, batch, setup = model_setup(name, args)
  pops, notes = {}, []
  for mapping in mappings:
    if k == 1 and mapping == SEQUENTIAL_MAPPING:
      pops[mapping] = seq  # the same program: its windows measure the timing noise
      continue
    try:
      pops[mapping] = setup(k, mapping)
    except ConfigError as e:  # K does not fit the device mesh
      notes.append(f"{name} K={k} {mapping}: skipped ({e})")
      continue
    pops[mapping].run(1)  # warm-up
  if not pops:
    return [], notes
  seq_windows, pop_windows = [], {m: [] for m in pops}
  for _ in range(args.windows):  # interleaved, so slow load drift hits both sides alike
    seq_windows.append(common.timed_window(seq, k * args.steps, args.seconds))
    for mapping, stepper in pops.items():
      pop_windows[mapping].append(common.timed_window(stepper, args.steps, args.seconds))
  seq_step_s = common.median(w[0] for w in seq_windows)
  seq_rate = batch / seq_step_s
  seq_cpu_rate = batch / common.median(w[1] for w in seq_windows)
  records = []
  for mapping, stepper in pops.items():
    step_s = common.median(w[0] for w in pop_windows[mapping])
    cpu_rate = k * batch / common.median(w[1] for w in pop_windows[mapping])
    rate = k * batch / step_s
    records.append(
      {
        "model": name,
        "registry_model": registry_name,
        "image": image,
        "k": k,
        "mapping": mapping,
        "auto_mapping": auto,
        "batch_per_copy": batch,
        "dtype": args.dtype,
        "img_per_s": round(rate, 2),
        "sequential_img_per_s": round(seq_rate, 2),
        "ratio": round(rate / seq_rate, 3),
        "step_ms": round(1e3 * step_s, 2),
        "sequential_step_ms": round(1e3 * seq_step_s, 2),
        # Per second of this process's CPU time (all threads): a view less sensitive to
        # other processes' load than wall time (but blind to cores left idle).
        "img_per_cpu_s": round(cpu_rate, 2),
        "sequential_img_per_cpu_s": round(seq_cpu_rate, 2),
        "cpu_ratio": round(cpu_rate / seq_cpu_rate, 3),
        "compile_s": round(stepper.compile_s, 2),
        "sequential_compile_s": round(seq.compile_s, 2),
        "mesh": dict(stepper.pop.mesh.shape),
        **env,
      }
    )
    r = records[-1]
    print(
      f"  {name} K={k} {mapping}: {r['img_per_s']:.1f} img/s vs sequential "
      f"{r['sequential_img_per_s']:.1f} (x{r['ratio']:.2f}), compile {r['compile_s']:.1f} s",
      flush=True,
    )
  return records, notes


def measure_model(name: str, args, env: dict, auto: str) -> tuple[list[dict], list[str]]:
  ks, capped = model_ks(name, args, env["backend"])
  notes = []
  if capped:
    notes.append(
      f"{name}: K in {capped} skipped on {env['backend']} (--cpu_max_k; 0 lifts the cap)"
    )
  seq = model_setup(name, args)[3](1, SEQUENTIAL_MAPPING)
  seq.run(1)  # warm-up
  records = []
  for k in ks:
    got, why = measure_k(name, k, args.mappings, seq, args, env, auto)
    records += got
    notes += why
  return records, notes


def main(argv=None) -> dict:
  args = parse_args(argv)
  set_devices(args.devices)
  env = common.environment()
  auto = resolve_mapping("auto", env["backend"])
  print(
    f"device: {env['device']} ({env['backend']}), jax {env['jax_version']}, {env['date']}, "
    f"load avg {env['load_avg']}; mapping 'auto' -> {auto!r} on {env['backend']}",
    flush=True,
  )
  records, notes = [], []
  for name in args.models:
    got, why = measure_model(name, args, env, auto)
    records += got
    notes += why
  env_after = common.environment()
  header = ["model", "K", "mapping", "img/s", "sequential img/s", "ratio", "compile s"]
  header += ["CPU-time ratio"]
  rows = [
    [
      r["model"],
      r["k"],
      r["mapping"],
      f"{r['img_per_s']:,.1f}",
      f"{r['sequential_img_per_s']:,.1f}",
      f"{r['ratio']:.2f}",
      f"{r['compile_s']:.1f}",
      f"{r['cpu_ratio']:.2f}",
    ]
    for r in records
  ]
  common.print_table(header, rows)
  for note in notes:
    print(f"note: {note}")
  print(
    f"mapping 'auto' resolves to {auto!r} on {env['backend']}; load avg before / after: "
    f"{env['load_avg']} / {env_after['load_avg']}"
  )
  payload = {
    "benchmark": "population_throughput",
    "argv": sys.argv[1:] if argv is None else list(argv),
    "backend": env["backend"],
    "auto_mapping": auto,
    "load_avg_before": env["load_avg"],
    "load_avg_after": env_after["load_avg"],
    "notes": notes,
    "records": records,
  }
  common.write_json(args.out, payload)
  return payload


if __name__ == "__main__":
  main()
