"""Few-shot NAS on the SPOS supernet (Zhao et al., "Few-shot Neural Architecture Search", ICML
2021): the one-shot supernet is split on one edge into one sub-supernet per candidate op; each
starts from the trained one-shot supernet's weights and trains only the paths with its op on
that edge, and a cell is scored on the sub-supernet of its op (Sec. 3.2; on NAS-Bench-201 the
release splits one edge into 5 sub-supernets, warm-started from the one-shot supernet,
REFERENCES.md 7a). Here the sub-supernets are the K = 5 copies of one population, trained in one
compiled step (`spos.split_edge`).

- `SplitController`: the trunk-loop controller: copy k gets `path_data={'op': k}` (the
  `oneshot.SplitSampler` input) and a probe path with op k on the split edge.
- `routed_scorer`: score(copy, encodings) on the sub-supernet of each cell's op (copy ignored).
- `restore_supernets(source, pop, encoding_length)`: all copies of another SPOS (or few-shot)
  run's last checkpoint; `warm_start(source, copy, encoding_length, put_copies)`: every copy
  starts from copy `copy` of it (`spos.init_from`), with a fresh optimiser state and schedule.
"""

import json
import pathlib

import jax
import numpy as np

from jaxml import oneshot
from jaxml.checkpoint import Checkpointer, abstract_tree
from jaxml.errors import CheckpointError, ConfigError


class SplitController(oneshot.ProbeController):
  """Copy k is the sub-supernet of op k on encoding position `position`: its train paths
  (`oneshot.SplitSampler`) and its val probe path hold op k there."""

  def __init__(self, probe, num_ops: int, position: int):
    super().__init__(probe, num_ops, name="spos")
    self.position = int(position)

  def ask(self, state, key):
    state, hparams, shared = super().ask(state, key)
    ops = np.arange(self.k, dtype=np.int32)
    probe = np.array(hparams["model"]["eval_encoding"])
    probe[:, self.position] = ops
    hparams["model"].update(eval_encoding=probe, path_data={"op": ops})
    return state, hparams, shared


def routed_scorer(scorer: oneshot.PathScorer, pop, position: int):
  """score(copy, encodings) -> float64 [n]: each cell scored by `scorer` on the copy (the
  sub-supernet) of its op at `position`; `copy` is ignored (the K copies are one supernet)."""

  def score(copy: int, encodings) -> np.ndarray:
    del copy
    encs = np.asarray(encodings, np.int32)
    out = np.zeros(encs.shape[0], np.float64)
    for op in np.unique(encs[:, position]):
      rows = encs[:, position] == op
      out[rows] = scorer(oneshot.copy_variables(pop, int(op)), encs[rows])
    return out

  return score


def source_config(source: str) -> dict:
  """The config.json of the run directory `source` (ConfigError when it is not a SPOS run)."""
  path = pathlib.Path(source) / "config.json"
  if not path.is_file():
    raise ConfigError(
      f"spos.init_from={source!r}: no config.json there (not a jaxml run directory)"
    )
  config = json.loads(path.read_text())
  if config.get("method") != "spos":
    raise ConfigError(f"spos.init_from={source!r} is a {config.get('method')!r} run, not spos")
  return config


def check_source(config) -> None:
  """Refuses (before anything is written) an `init_from` whose supernet differs from this one."""
  s, src = config.spos, source_config(config.spos.init_from)
  for key in ("name", "channels", "cells_per_stage", "layers", "width"):
    if key in config.model and src["model"].get(key) != config.model[key]:
      raise ConfigError(
        f"spos.init_from={s.init_from!r}: its model.{key}={src['model'].get(key)!r}, this run's "
        f"{config.model[key]!r}: the supernets must match"
      )
  if src["data"]["resolution"] != config.data.resolution or src["spos"]["affine"] != s.affine:
    raise ConfigError(f"spos.init_from={s.init_from!r}: data.resolution / spos.affine differ")
  if not 0 <= s.init_copy < src["population"]["size"]:
    raise ConfigError(
      f"spos.init_copy={s.init_copy}: the run in {s.init_from!r} has "
      f"{src['population']['size']} copies"
    )
  if not (pathlib.Path(s.init_from) / "checkpoints").is_dir():
    raise ConfigError(f"spos.init_from={s.init_from!r}: no checkpoints/ there to start from")


def restore_supernets(source: str, pop, encoding_length: int):
  """The population (all its copies, host arrays) of the last checkpoint of the SPOS run in
  `source`, whose copies have the structure of `pop`'s (the same supernet and optimiser)."""
  src = source_config(source)
  k_src = int(src["population"]["size"])
  resize = lambda x: jax.ShapeDtypeStruct((k_src, *x.shape[1:]), x.dtype)  # noqa: E731
  model_inputs = {"eval_encoding": resize(np.zeros((1, encoding_length), np.int32))}
  if src["spos"].get("split_edge", -1) >= 0:  # a few-shot run: each copy's op (`SplitController`)
    model_inputs["path_data"] = {"op": resize(np.zeros((1,), np.int32))}
  saved = {  # the state a SPOS run checkpoints (`run_trunks` under a `ProbeController`)
    "pop": jax.tree.map(resize, abstract_tree(pop)),
    "controller": {"trunks": jax.ShapeDtypeStruct((), np.int32)},
    "hparams": {"model": model_inputs},
  }
  try:
    with Checkpointer(pathlib.Path(source) / "checkpoints") as ckpt:
      found = ckpt.restore_latest(saved)
  except CheckpointError as e:
    raise ConfigError(f"spos.init_from={source!r}: {e}") from e
  if found is None:
    raise ConfigError(f"spos.init_from={source!r}: no checkpoint to start from")
  return jax.device_get(found[1]["pop"])


def warm_start(source: str, copy: int, encoding_length: int, put_copies):
  """pop -> pop whose copies all hold the params and BN statistics of copy `copy` of the last
  checkpoint of the SPOS run in `source` (the trained one-shot supernet); step, optimiser state
  and randomness stay fresh, so the sub-supernets get their own learning-rate schedule.
  `put_copies` places host arrays [K, ...] on the population's devices."""

  def with_source_weights(pop):
    src, k = restore_supernets(source, pop, encoding_length), pop.step.shape[0]
    pick = lambda x: np.repeat(np.asarray(x)[copy : copy + 1], k, 0)  # noqa: E731
    weights = {"params": src.params, "batch_stats": src.batch_stats}
    return pop.replace(**put_copies(jax.tree.map(pick, weights)))

  return with_source_weights
