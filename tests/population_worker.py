"""Subprocess worker for the population tests: one small population run under a given device /
process layout, printing a JSON digest of the final state (so layouts can be compared).

  python tests/population_worker.py --devices 8 --size 8 [--process-id 0 --num-processes 2 --port P]
"""

import argparse
import json
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--devices", type=int, default=1)
parser.add_argument("--size", type=int, default=4)
parser.add_argument("--steps", type=int, default=3)
parser.add_argument("--mapping", default="loop")
parser.add_argument("--model", default="tiny_cnn")
parser.add_argument("--no-augment", action="store_true")
parser.add_argument("--process-id", type=int, default=0)
parser.add_argument("--num-processes", type=int, default=1)
parser.add_argument("--port", type=int, default=0)
args = parser.parse_args()

import jax  # noqa: E402

jax.config.update("jax_num_cpu_devices", args.devices)
if args.num_processes > 1:
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(
    f"127.0.0.1:{args.port}", num_processes=args.num_processes, process_id=args.process_id
  )

import numpy as np  # noqa: E402

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from population_fixtures import run_population  # noqa: E402

from jaxml.population import Population, to_host  # noqa: E402

pop = Population(args.size, args.mapping)
state, metrics, evals = run_population(
  pop, steps=args.steps, model=args.model, random_augment=not args.no_augment
)
params = to_host(state.params)
digest = {
  "mesh": dict(pop.mesh.shape),
  "process_count": jax.process_count(),
  "params": [np.asarray(x).tolist() for x in jax.tree.leaves(params)],
  "loss": np.asarray(to_host(metrics["loss"])).tolist(),
  "eval_accuracy": np.asarray(evals["accuracy"]).tolist(),
}
if jax.process_index() == 0:
  print("DIGEST " + json.dumps(digest))
