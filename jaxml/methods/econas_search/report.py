"""The outputs of `jaxml.methods.econas_search`: the search's answer after each cycle, summary.json
fields, search.npz and plots/search.png (best-so-far against cumulative cost)."""

import numpy as np

from jaxml.metrics import plots  # noqa: F401  (selects matplotlib's Agg backend)


def answer(history: dict, upto: int):
  """(cycle, slot) of the search's answer after cycle `upto`: the best val accuracy among the
  trainings of the highest stage reached so far (P_3E once any network got there)."""
  stage, val = history["stage"][: upto + 1], history["val"][: upto + 1]
  top = stage.max()
  score = np.where(stage == top, val, -np.inf)
  c, j = np.unravel_index(int(np.argmax(score)), score.shape)
  return int(c), int(j)


def summary(config, run, space, table, history, meta, search, stage_steps) -> dict:
  rounds, k = history["val"].shape
  images = stage_steps * config.batch_size  # per training of one network for one stage
  # The search's trainings: cycle 0's inactive slots (beyond the initial population) train no
  # network of the search (network id -1) and count in no cost.
  searched = history["network"] >= 0
  trainings = int(searched.sum())
  # Forward FLOPs per image (2 per multiply-add) of each trained architecture at the proxy.
  flops = 2.0 * np.asarray(space.flops(history["encoding"].reshape(-1, space.encoding_length)))
  cost = np.cumsum(images * np.where(searched, flops.reshape(rounds, k), 0.0).sum(axis=1))
  best_val, best_gt = [], []
  for c in range(rounds):
    ac, aj = answer(history, c)
    best_val.append(float(history["val"][ac, aj]))
    if table is not None:
      best_gt.append(float(table.query(history["encoding"][ac, aj])))
  c, j = answer(history, rounds - 1)
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
    "trainings": trainings,
    "trainings_per_stage": [int(np.sum(history["stage"] == s)) for s in (1, 2, 3)],
    "found_architecture": space.to_string(enc),
    "found_encoding": enc.tolist(),
    "found_network": int(history["network"][c, j]),
    "found_stage": int(history["stage"][c, j]),
    "found_val_accuracy": float(history["val"][c, j]),
    "train_images": int(trainings * images),
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
    ids, first = np.unique(history["network"].reshape(-1), return_index=True)
    first = first[ids >= 0]
    trained = history["encoding"].reshape(-1, space.encoding_length)[first]
    summary["mean_test_accuracy_nb201_of_networks"] = float(np.mean(table.query(trained)))
  np.savez(run.workdir / "search.npz", **history)
  curves = {"val accuracy (search)": best_val}
  if table is not None:
    curves["NAS-Bench-201 test accuracy (/100)"] = [g / 100 for g in best_gt]
  plot_search(cost, curves, run.workdir / "plots" / "search.png")
  return summary


def plot_search(cost: np.ndarray, curves: dict, path) -> None:
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
