"""Scaling of one K-copy population over 1..N devices: aggregate img/s, speed-up, efficiency.

The same population (model, K, batch per copy, mapping) is built on the first n devices for
each n in `--device_counts`: copies are sharded over the copy axis of the (copy, data) mesh, and
when K < n the spare devices split each copy's batch (the data axis, gradients averaged over
it; `jaxml.population.mesh_shape`). Timing as in `benchmarks/common.py` (median of windows after
a warm-up step, compile apart). Speed-up = img/s on n devices / img/s on 1; efficiency =
speed-up / n.

  python benchmarks/population_scaling.py --cpu_devices 8 --out /tmp/scaling_cpu.json
  python benchmarks/population_scaling.py --model resnet18 --k 8 --device_counts 1,2,4,8

`--cpu_devices N` splits the host CPU into N virtual XLA devices (they share its cores, so the
speed-up there measures sharding overhead, not parallel speed); on GPUs or TPUs the real
devices are used.
"""

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jax  # noqa: E402

from benchmarks import common, population_throughput  # noqa: E402
from jaxml.errors import ConfigError  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  models = ", ".join([*population_throughput.MODELS, "quick"])
  parser.add_argument("--model", default="tiny", help=f"from {models} (quick: for tests)")
  parser.add_argument("--k", type=int, default=8, help="copies in the population")
  parser.add_argument("--device_counts", default="1,2,4,8", help="n devices to run on")
  parser.add_argument("--mapping", default="auto", choices=("auto", "vmap", "loop"))
  parser.add_argument("--batch", type=int, default=0, help="images per copy (0: the model's)")
  parser.add_argument("--cpu_devices", type=int, default=0, help="N > 0: N virtual CPU devices")
  common.add_timing_args(parser, steps=2, seconds=1.0)
  parser.add_argument("--out", default=None, help="write the records as JSON here")
  args = parser.parse_args(argv)
  args.device_counts = common.int_list(args.device_counts)
  if args.model not in population_throughput.MODELS and args.model != "quick":
    raise ConfigError(f"--model: unknown model {args.model!r}; valid: {models}")
  if args.k < 1 or not args.device_counts or min(args.device_counts) < 1:
    raise ConfigError("--k and every --device_counts value must be >= 1")
  return args


def main(argv=None) -> dict:
  args = parse_args(argv)
  population_throughput.set_devices(args.cpu_devices)
  available = jax.devices()
  counts = [n for n in args.device_counts if n <= len(available)]
  if len(counts) < len(args.device_counts):
    raise ConfigError(
      f"--device_counts {args.device_counts}: only {len(available)} devices (--cpu_devices N "
      "adds virtual CPU devices)"
    )
  model = population_throughput.MODELS.get(args.model, population_throughput.QUICK_MODEL)
  registry_name, fields, image, batch = model
  batch = args.batch or batch
  env = common.environment()
  print(f"device: {env['device']} ({env['backend']}), jax {env['jax_version']}", flush=True)
  records = []
  for n in counts:
    stepper = common.population_setup(
      registry_name,
      k=args.k,
      mapping=args.mapping,
      batch=batch,
      image=image,
      devices=available[:n],
      fast_compile=args.model == "quick",  # a smoke model: its compile is all a test waits for
      **fields,
    )
    stepper.run(1)  # warm-up
    windows = [common.timed_window(stepper, args.steps, args.seconds) for _ in range(args.windows)]
    rate = args.k * batch / common.median(w[0] for w in windows)
    base = records[0]["img_per_s"] if records else rate
    records.append(
      {
        "devices": n,
        "mesh": dict(stepper.pop.mesh.shape),
        "mapping": stepper.pop.mapping,
        "img_per_s": round(rate, 1),
        "speedup": round(rate / base, 3),
        "efficiency": round(rate / base / n, 3),
        "compile_s": round(stepper.compile_s, 2),
      }
    )
    print(f"  {n} devices: {rate:,.0f} img/s (x{rate / base:.2f})", flush=True)
  header = ["devices", "mesh (copy, data)", "mapping", "img/s", "speed-up", "efficiency"]
  rows = [
    [
      r["devices"],
      f"{r['mesh']['copy']}, {r['mesh']['data']}",
      r["mapping"],
      f"{r['img_per_s']:,.0f}",
      f"{r['speedup']:.2f}",
      f"{r['efficiency']:.2f}",
    ]
    for r in records
  ]
  common.print_table(header, rows)
  payload = {
    "benchmark": "population_scaling",
    "argv": sys.argv[1:] if argv is None else list(argv),
    "model": args.model,
    "k": args.k,
    "batch_per_copy": batch,
    **env,
    "records": records,
  }
  common.write_json(args.out, payload)
  return payload


if __name__ == "__main__":
  try:
    main()
  except ConfigError as e:
    sys.exit(f"population_scaling: error: {e}")
