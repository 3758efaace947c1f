"""Integer encoding of the NAS-Bench-201 cell (Dong & Yang, ICLR 2020, Sec. 3).

A cell is a DAG on 4 nodes; every edge (to, from) with from < to carries one of 5 operations, so
an architecture is 6 integers in [0, 5) and the space has 5**6 = 15,625 members. Edges are in the
order of the benchmark's architecture string

  |op~0|+|op~0|op~1|+|op~0|op~1|op~2|
   (1,0)  (2,0)  (2,1)  (3,0)  (3,1)  (3,2)

and `encoding_to_index` reads an encoding as a base-5 number with edge 0 most significant, which is
the row index of dense ground-truth tables (`jaxml.nasbench.nb201`).

String conversion and validation are host-side (numpy, raise `ConfigError`); sampling, mutation,
crossover and index conversion are pure jnp functions, jittable and vmappable, that act on the
last axis of `[..., 6]` int32 arrays. Their random numbers come from one flat draw each
(`jaxml.spaces.base.uniform`), which keeps the compiled search steps small.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np

from jaxml.errors import ConfigError
from jaxml.spaces.base import randint, uniform

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NUM_EDGES = 6
NUM_OPS = 5
NUM_ARCHS = NUM_OPS**NUM_EDGES  # 15,625
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # (to, from), in arch-string order

_OP_INDEX = {op: i for i, op in enumerate(OPS)}
# The well-formed arch string; from_string falls back to a step-by-step parse for error messages.
_ARCH_RE = re.compile(r"\|(\w+)~0\|\+\|(\w+)~0\|(\w+)~1\|\+\|(\w+)~0\|(\w+)~1\|(\w+)~2\|")

# Place values of the base-5 index, edge 0 most significant.
PLACE_VALUES = np.array([NUM_OPS ** (NUM_EDGES - 1 - e) for e in range(NUM_EDGES)], np.int32)


def _xp(x):
  """jnp for jax arrays and tracers (so the same function works under jit), else numpy."""
  return jnp if isinstance(x, jax.Array) else np


def validate(enc) -> None:
  """Raises `ConfigError` unless `enc` is an integer array [..., 6] with values in [0, 5)."""
  arr = np.asarray(enc)
  if arr.ndim == 0 or arr.shape[-1] != NUM_EDGES:
    raise ConfigError(
      f"an NB201 encoding needs {NUM_EDGES} entries (one op per edge), got shape {arr.shape}"
    )
  if arr.size and not np.issubdtype(arr.dtype, np.integer):
    raise ConfigError(f"an NB201 encoding must hold integers, got dtype {arr.dtype}")
  if arr.size and (arr.min() < 0 or arr.max() >= NUM_OPS):
    raise ConfigError(
      f"NB201 op indices must lie in [0, {NUM_OPS}) ({', '.join(OPS)}), "
      f"got values in [{arr.min()}, {arr.max()}]"
    )


def to_string(enc) -> str:
  """Encoding [6] -> the benchmark's arch string, e.g. '|nor_conv_3x3~0|+|...~0|...~1|+|...|'."""
  arr = np.asarray(enc)
  validate(arr)
  if arr.ndim != 1:
    raise ConfigError(f"to_string takes one encoding of shape (6,), got shape {arr.shape}")
  nodes, e = [], 0
  for to in range(1, 4):
    nodes.append("|" + "|".join(f"{OPS[arr[e + j]]}~{j}" for j in range(to)) + "|")
    e += to
  return "+".join(nodes)


def from_string(s: str) -> np.ndarray:
  """Arch string -> int32[6]; `ConfigError` if malformed, an op is unknown or an index is wrong."""
  if not isinstance(s, str):
    raise ConfigError(f"an NB201 arch string must be a str, got {type(s).__name__}")
  m = _ARCH_RE.fullmatch(s.strip())
  if m and all(op in _OP_INDEX for op in m.groups()):  # fast path: 15,625 rows per table load
    return np.array([_OP_INDEX[op] for op in m.groups()], np.int32)
  parts = s.strip().split("+")
  if len(parts) != 3:
    raise ConfigError(
      f"malformed NB201 arch string {s!r}: expected 3 nodes separated by '+', got {len(parts)}"
    )
  enc = []
  for to, part in enumerate(parts, start=1):
    if len(part) < 2 or not (part.startswith("|") and part.endswith("|")):
      raise ConfigError(f"malformed NB201 arch string {s!r}: node {to} {part!r} is not '|...|'")
    entries = part[1:-1].split("|")
    if len(entries) != to:
      raise ConfigError(
        f"malformed NB201 arch string {s!r}: node {to} needs {to} input edges, got {len(entries)}"
      )
    for j, entry in enumerate(entries):
      op, sep, src = entry.partition("~")
      if not sep:
        raise ConfigError(f"malformed NB201 arch string {s!r}: edge {entry!r} is not 'op~index'")
      if op not in OPS:
        raise ConfigError(f"unknown op {op!r} in NB201 arch string {s!r}; valid ops: {OPS}")
      if src != str(j):
        raise ConfigError(
          f"wrong node index in NB201 arch string {s!r}: edge {entry!r} of node {to} "
          f"must come from node {j}"
        )
      enc.append(OPS.index(op))
  return np.asarray(enc, np.int32)


def encoding_to_index(enc):
  """Base-5 index in [0, 15625) of encodings [..., 6] (edge 0 most significant).

  jnp for jax inputs (jittable: use it to gather from dense tables), numpy otherwise; a single
  numpy/list encoding returns a Python int.
  """
  xp = _xp(enc)
  idx = xp.sum(xp.asarray(enc, xp.int32) * xp.asarray(PLACE_VALUES), axis=-1)
  if xp is np and idx.ndim == 0:
    return int(idx)
  return idx


def index_to_encoding(i):
  """Inverse of `encoding_to_index`: indices [...] -> int32 encodings [..., 6]."""
  xp = _xp(i)
  i = xp.asarray(i, xp.int32)
  if xp is np and i.size and (i.min() < 0 or i.max() >= NUM_ARCHS):
    raise ConfigError(f"NB201 arch index must lie in [0, {NUM_ARCHS}), got {i.min()}..{i.max()}")
  return ((i[..., None] // xp.asarray(PLACE_VALUES)) % NUM_OPS).astype(xp.int32)


def enumerate_all() -> np.ndarray:
  """All 15,625 encodings, int32[15625, 6], row r has index r."""
  return index_to_encoding(np.arange(NUM_ARCHS))


def sample(key: jax.Array, n: int) -> jax.Array:
  """n encodings uniformly at random from the space: int32[n, 6]."""
  return randint(key, (n, NUM_EDGES), NUM_OPS)


def mutate(key: jax.Array, enc: jax.Array, prob: float) -> jax.Array:
  """Per-edge mutation: each edge independently, with probability `prob`, gets a different op.

  This is the SPOS mutation (Guo et al., 2020, Alg. 1, per-gene prob 0.1). If no edge fires the
  encoding comes back unchanged; SPOS rejects such duplicates and draws again, so no change is
  forced here. For "exactly one edge changes" (regularized evolution) use `mutate_one`.
  """
  enc = jnp.asarray(enc, jnp.int32)
  # One uniform draw per edge decides both whether it fires (u < prob) and, given that it fires
  # (u / prob is then uniform in [0, 1)), which of the NUM_OPS - 1 other ops it takes. One random
  # call instead of two keeps the compiled program small.
  u = uniform(key, enc.shape)
  fire = u < prob
  v = jnp.where(fire, u / jnp.where(fire, prob, 1.0), 0.0)
  shift = 1 + jnp.minimum((v * (NUM_OPS - 1)).astype(jnp.int32), NUM_OPS - 2)
  return jnp.where(fire, (enc + shift) % NUM_OPS, enc)


def mutate_one(key: jax.Array, enc: jax.Array) -> jax.Array:
  """Changes exactly one uniformly chosen edge to a different op (Real et al., 2019, Sec. 2).

  This is the NAS-Bench-201 paper's REA mutation; every result differs from its parent.
  Works on [..., 6]: each leading-axis encoding gets its own edge.
  """
  enc = jnp.asarray(enc, jnp.int32)
  # One draw r uniform over the NUM_EDGES * (NUM_OPS - 1) (edge, other op) pairs.
  r = randint(key, enc.shape[:-1], NUM_EDGES * (NUM_OPS - 1))
  edge, shift = r // (NUM_OPS - 1), 1 + r % (NUM_OPS - 1)
  hit = jax.nn.one_hot(edge, NUM_EDGES, dtype=jnp.bool_)
  return jnp.where(hit, (enc + shift[..., None]) % NUM_OPS, enc)


def crossover(key: jax.Array, a: jax.Array, b: jax.Array) -> jax.Array:
  """Uniform crossover: each edge taken from `a` or `b` with probability 1/2 (SPOS, Alg. 1)."""
  a = jnp.asarray(a, jnp.int32)
  b = jnp.asarray(b, jnp.int32)
  shape = jnp.broadcast_shapes(a.shape, b.shape)
  return jnp.where(uniform(key, shape) < 0.5, a, b)


def computes_something(enc) -> bool:
  """Whether the cell's output node is reached from its input through non-`none` edges (else the
  network's cells output zeros and it scores chance, ~10 %)."""
  reached = {0}
  for k, (to, frm) in enumerate(EDGES):  # edges are ordered by target node
    if enc[k] != 0 and frm in reached:
      reached.add(to)
  return 3 in reached
