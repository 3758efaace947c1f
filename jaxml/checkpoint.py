"""Checkpoints of a whole run state, with a checksum of every array.

A run state is any pytree of jax/numpy arrays: params, batch stats, optax states, RNG keys, the
step, the data-iterator position, a controller's logits and its Adam state. `Checkpointer` saves
it with an Orbax `CheckpointManager` (a `StandardSave` item for the arrays and a `JsonSave` item for
a small JSON metadata dict) and restores it against an abstract target (`jax.eval_shape` output,
`jax.ShapeDtypeStruct`s, optionally with shardings so arrays land on the given devices).

Why checksums: Orbax restores a bit-flipped checkpoint silently (measured on this project: a
corrupted kernel came back as 5.8e28), and a missing chunk can come back as zeros. So `save` stores
the sha256 of the host bytes of every saved array (keyed by its pytree key path, with shape and
dtype) in the metadata item, plus a digest of the metadata itself, and `restore` re-hashes every
restored array. `restore_latest` skips a corrupt or partial step with a warning and uses the
previous good one; a checkpoint of a different run (other tree structure, shapes or dtypes) is an
error, never a partial restore.

RNG keys may be raw `jax.random.key_data` uint32 arrays or typed keys (`jax.random.key`); typed
keys are stored as their key data and re-wrapped with the same PRNG implementation on restore.
Python scalars and numpy leaves are stored as `jnp.asarray` holds them (0-d arrays, canonical
dtypes: float64 becomes float32 unless jax_enable_x64), i.e. as `jax.eval_shape` describes them.
Multi-host: Orbax writes the files (the JSON item from process 0 only); arrays that are not fully
addressable are gathered to every host for hashing, so all processes agree on the checksums.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from jaxml.errors import CheckpointError

PyTree = Any
_FORMAT = 1  # Version of the metadata layout below.


class _CorruptStep(CheckpointError):
  """One step is unreadable or fails its checksums; an older step may still be good."""


class _OtherRun(CheckpointError):
  """The checkpoint's tree does not match the target: the workdir belongs to another run."""


def _as_array(x):
  """Scalars and numpy leaves -> jax arrays (canonical dtypes, as `jax.eval_shape` sees them)."""
  return x if isinstance(x, (jax.Array, jax.ShapeDtypeStruct)) else jnp.asarray(x)


def _abstract(x) -> jax.ShapeDtypeStruct:
  if isinstance(x, (jax.Array, jax.ShapeDtypeStruct)):
    return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None))
  return jax.ShapeDtypeStruct(np.shape(x), jax.dtypes.canonicalize_dtype(np.result_type(x)))


def abstract_tree(tree):
  """The shapes, dtypes and shardings of a state's arrays (jax or numpy, dtypes kept as they
  are): the target `restore_latest` restores a saved state of that structure into."""
  return jax.tree.map(
    lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None)), tree
  )


def _is_key(x) -> bool:
  return jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _host(x) -> np.ndarray:
  """Host copy of the exact values saved/restored (gathered when spread over processes)."""
  if isinstance(x, jax.Array) and not x.is_fully_addressable:
    from jax.experimental import multihost_utils  # Only needed on multi-host runs.

    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
  return np.asarray(jax.device_get(x))


def _sha256(x: np.ndarray) -> str:
  return hashlib.sha256(np.ascontiguousarray(x).reshape(-1).view(np.uint8)).hexdigest()


def _digest(user: dict, leaves: dict) -> str:
  """Hash of the metadata itself, so a damaged JSON file is not mistaken for another run."""
  text = json.dumps({"user": user, "leaves": leaves}, sort_keys=True, allow_nan=True)
  return hashlib.sha256(text.encode()).hexdigest()


def _flatten(tree: PyTree) -> tuple[list[str], list[Any], Any]:
  path_leaves, treedef = jax.tree_util.tree_flatten_with_path(tree)
  return [jax.tree_util.keystr(p) for p, _ in path_leaves], [x for _, x in path_leaves], treedef


class Checkpointer:
  """Saves and restores a run state (pytree) plus a JSON metadata dict in `directory`.

  Usage:
    with Checkpointer(workdir / 'checkpoints') as ckpt:
      found = ckpt.restore_latest(jax.eval_shape(lambda: state))
      if found is not None:
        step, state, meta = found
      ...
      ckpt.save(step, state, {'trunk': 3})
  """

  def __init__(self, directory: str | os.PathLike, max_to_keep: int = 3, async_save: bool = False):
    self.directory = os.path.abspath(os.fspath(directory))
    self._async = async_save
    self._bad_steps: set[int] = set()  # Steps that failed verification in this process.
    options = ocp.CheckpointManagerOptions(
      max_to_keep=max_to_keep,
      enable_async_checkpointing=async_save,
      cleanup_tmp_directories=True,  # Leftovers of a save killed before its commit.
      create=True,
    )
    self._mngr = ocp.CheckpointManager(self.directory, options=options)

  def all_steps(self) -> list[int]:
    """Committed steps, oldest first (not yet verified)."""
    return sorted(int(s) for s in self._mngr.all_steps())

  def latest_step(self) -> int | None:
    steps = self.all_steps()
    return steps[-1] if steps else None

  def save(self, step: int, state: PyTree, metadata: dict | None = None, force: bool = False):
    """Writes `state` and `metadata` as checkpoint `step`; blocks until written unless async.

    Args:
      step: the step number; must be newer than the latest checkpoint unless `force`.
      state: pytree of arrays (python scalars and typed PRNG keys allowed).
      metadata: small JSON-serialisable dict (e.g. trunk index, history lists).
      force: overwrite an existing checkpoint of this step / allow saving an older step.
    """
    step = int(step)
    self._mngr.wait_until_finished()
    for bad in sorted(self._bad_steps):
      if bad >= step and bad in self.all_steps():
        # A corrupt newer step would make Orbax refuse this save; replace it instead.
        logging.warning("Deleting corrupt checkpoint step %d in %s.", bad, self.directory)
        self._mngr.delete(bad)
    self._bad_steps = {s for s in self._bad_steps if s < step}
    latest = self.latest_step()
    if step in self.all_steps() and force:
      self._mngr.delete(step)
    elif latest is not None and step <= latest and not force:
      raise CheckpointError(
        f"Cannot save step {step} in {self.directory}: step {latest} is already saved. Pass "
        "force=True to overwrite, or use a fresh --workdir."
      )
    names, leaves, treedef = _flatten(state)
    arrays, entries = [], {}
    for name, x in zip(names, leaves, strict=True):
      x = _as_array(x)
      entry = {"shape": list(x.shape), "dtype": str(x.dtype)}
      if _is_key(x):
        entry["key_impl"] = str(jax.random.key_impl(x))
        x = jax.random.key_data(x)
      entry["sha256"] = _sha256(_host(x))
      arrays.append(x)
      entries[name] = entry
    user = json.loads(json.dumps(metadata or {}))  # As it will read back (tuples -> lists).
    meta = {"format": _FORMAT, "user": user, "leaves": entries, "digest": _digest(user, entries)}
    self._mngr.save(
      step,
      args=ocp.args.Composite(
        state=ocp.args.StandardSave(jax.tree_util.tree_unflatten(treedef, arrays)),
        meta=ocp.args.JsonSave(meta),
      ),
      force=True,  # Our checks above replace Orbax's silent "not newer than latest: skip".
    )
    if not self._async:
      self._mngr.wait_until_finished()

  def restore(self, step: int, abstract_state: PyTree) -> tuple[PyTree, dict]:
    """Restores checkpoint `step` into the structure of `abstract_state`; verifies checksums.

    Args:
      step: a step from `all_steps()`.
      abstract_state: pytree of `jax.ShapeDtypeStruct` (optionally with `sharding`) or arrays
        with the structure, shapes and dtypes of the saved state.

    Returns:
      (state, metadata): arrays bit-identical to those saved, and the metadata dict.

    Raises:
      CheckpointError: the step is missing, corrupt or partial, or belongs to another run.
    """
    self._mngr.wait_until_finished()
    step = int(step)
    if step not in self.all_steps():
      raise CheckpointError(f"No checkpoint of step {step} in {self.directory}.")
    try:
      return self._restore(step, abstract_state)
    except _CorruptStep:
      self._bad_steps.add(step)
      raise

  def _restore(self, step: int, abstract_state: PyTree) -> tuple[PyTree, dict]:
    where = f"checkpoint step {step} in {self.directory}"
    try:
      meta = self._mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
      user, entries = meta["user"], meta["leaves"]
      ok = meta["format"] == _FORMAT and meta["digest"] == _digest(user, entries)
    except Exception as e:  # Orbax/JSON raise many types for a damaged file; all mean unreadable.
      raise _CorruptStep(f"{where}: metadata unreadable ({type(e).__name__}: {e})") from e
    if not ok:
      raise _CorruptStep(f"{where}: metadata fails its own digest (damaged file)")
    names, leaves, treedef = _flatten(abstract_state)
    self._check_structure(where, names, leaves, entries)
    targets = []
    for x in map(_abstract, leaves):
      if _is_key(x):
        data = jax.eval_shape(jax.random.key_data, jax.ShapeDtypeStruct(x.shape, x.dtype))
        x = jax.ShapeDtypeStruct(data.shape, data.dtype, sharding=x.sharding)
      targets.append(x)
    target = jax.tree_util.tree_unflatten(treedef, targets)
    try:
      args = ocp.args.Composite(state=ocp.args.StandardRestore(target))
      restored = self._mngr.restore(step, args=args)["state"]
    except Exception as e:  # Missing/truncated files surface as assorted tensorstore errors.
      raise _CorruptStep(f"{where}: arrays unreadable ({type(e).__name__}: {e})") from e
    out_names, out, _ = _flatten(restored)
    if out_names != names:
      raise _CorruptStep(f"{where}: restored tree differs from the target")
    result = []
    for name, x, t in zip(names, out, targets, strict=True):
      host, entry = _host(x), entries[name]
      if host.shape != t.shape or host.dtype != t.dtype or _sha256(host) != entry["sha256"]:
        raise _CorruptStep(f"{where}: checksum mismatch at leaf {name} (data corrupted on disk)")
      result.append(
        jax.random.wrap_key_data(x, impl=entry["key_impl"]) if "key_impl" in entry else x
      )
    return jax.tree_util.tree_unflatten(treedef, result), user

  def _check_structure(self, where: str, names: list[str], leaves: list, entries: dict) -> None:
    """Raises _OtherRun unless the saved leaves are exactly the target's leaves."""
    problems = [f"{n} is not in the checkpoint" for n in names if n not in entries]
    problems += [f"{n} is only in the checkpoint" for n in entries if n not in set(names)]
    for n, x in zip(names, map(_abstract, leaves), strict=True):
      saved, want = entries.get(n), {"dtype": str(x.dtype), "shape": list(x.shape)}
      if saved is not None and (saved["dtype"], saved["shape"]) != (want["dtype"], want["shape"]):
        problems.append(
          f"{n} is {saved['dtype']}{saved['shape']} in the checkpoint but "
          f"{want['dtype']}{want['shape']} in the target"
        )
    if problems:
      raise _OtherRun(
        f"{where} holds a checkpoint of a different run/config ({'; '.join(problems[:3])}"
        f"{'; ...' if len(problems) > 3 else ''}). Use a fresh --workdir."
      )

  def restore_latest(self, abstract_state: PyTree) -> tuple[int, PyTree, dict] | None:
    """Restores the newest step that passes verification.

    Returns:
      (step, state, metadata), or None when the directory holds no checkpoint.

    Raises:
      CheckpointError: no step is good, or the checkpoints belong to another run/config.
    """
    self._mngr.wait_until_finished()
    steps = self.all_steps()
    if not steps:
      return None
    reasons = []
    for step in reversed(steps):
      try:
        state, meta = self.restore(step, abstract_state)
      except _CorruptStep as e:
        logging.warning("Skipping corrupt %s; trying the previous step.", e)
        reasons.append(str(e))
        continue
      return step, state, meta
    raise CheckpointError(
      f"No restorable checkpoint in {self.directory}: " + " | ".join(reasons) + ". Delete the "
      "directory (or use a fresh --workdir) to start over."
    )

  def close(self) -> None:
    """Waits for pending saves and releases Orbax resources."""
    self._mngr.wait_until_finished()
    self._mngr.close()

  def __enter__(self) -> Checkpointer:
    return self

  def __exit__(self, *exc) -> None:
    self.close()
