"""NAS-Bench-201 cell search space (Dong & Yang, "NAS-Bench-201: Extending the Scope of
Reproducible Neural Architecture Search", ICLR 2020), as data.

The cell is a 4-node DAG; each of its 6 edges (`nb201_encoding.EDGES`, arch-string order
1<-0 | 2<-0, 2<-1 | 3<-0, 3<-1, 3<-2) carries one of 5 ops (`nb201_encoding.OPS`, index order
none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3). A node is the sum of its incoming
edges; the cell's output is node 3. The encoding is int32[6], one op index per edge. The
encoding-level functions live in `jaxml.spaces.nb201_encoding`; this module wraps them into the
`SearchSpace` interface and adds costs and the Flax network.

Macro skeleton (AutoDL-Projects `lib/models/cell_infers/tiny_network.py`, `TinyNetwork`):
stem 3x3 conv + BN with C channels; 3 stages of N cells with C, 2C, 4C channels separated by
`ResNetBasicBlock`s of stride 2; BN-ReLU, global average pool, linear classifier. Defaults C=16,
N=5, 32x32 inputs, 10 classes; EcoNAS-style proxies shrink C, N and the resolution.

Parameter names: cell i (0-based over the whole network, reduction blocks included, as the
reference's `cells` list) is `layer{i}`, its edge k with op o is `edge{k}_{o}`. The array build
holds every parametric op of every edge, the fixed build only the chosen ones, under the same
names.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxml.errors import ConfigError
from jaxml.spaces import nb201_encoding as enc201
from jaxml.spaces.base import SearchSpace, check_call, check_weights, mix, select
from jaxml.spaces.ops import ResNetBasicBlock, batch_norm, build_op, op_cost, resnet_block_cost

NUM_NODES = 4


# Ops that map a zero input to exactly zero. The fixed build leaves them out on a known-zero
# node: same outputs (x + 0 == x), and XLA no longer constant-folds an average pool over a
# zero array at compile time (seconds per pool on the CPU). Convolutions are not among them:
# ReLU-conv-BN of zero is BN's bias in training.
_ZERO_PRESERVING = ("none", "skip_connect", "avg_pool_3x3")


def _cell_edge(k: int, x, op: int, train: bool, affine: bool):
  """Fixed build of edge k with op index `op` (None output for `none`)."""
  name = enc201.OPS[op]
  if name == "none":
    return None
  return build_op(name, x.shape[-1], 1, affine, f"edge{k}_{name}")(x, train)


def _cell_edge_all(k: int, x, op, train: bool, affine: bool):
  """Array build of edge k: every candidate op, the one at traced index `op` selected."""
  cands = [_cell_edge(k, x, o, train, affine) for o in range(enc201.NUM_OPS)]
  return select(cands, op, like=x)


def _cell_edge_mixed(k: int, x, w, train: bool, affine: bool):
  """Array build of edge k as a DARTS mixed op: sum_o w[o] * o(x) (the same parameters)."""
  cands = [_cell_edge(k, x, o, train, affine) for o in range(enc201.NUM_OPS)]
  return mix(cands, w, like=x)


class NB201Cell(nn.Module):
  """One NB201 cell. `arch` given: fixed build (only chosen ops); else encoding int[6] input,
  or op weights float[6, 5] (`weights`: every edge a mixed op, DARTS)."""

  arch: tuple[int, ...] | None = None
  affine: bool = True

  @nn.compact
  def __call__(self, x, encoding=None, train: bool = False, weights=None):
    nodes = [x]  # None: a node known to be zero (fixed build only)
    for to in range(1, NUM_NODES):
      total = None
      for k, (t, f) in enumerate(enc201.EDGES):
        if t != to:
          continue
        if self.arch is not None:
          if nodes[f] is None and enc201.OPS[self.arch[k]] in _ZERO_PRESERVING:
            continue  # exactly zero; see _ZERO_PRESERVING
          source = jnp.zeros_like(x) if nodes[f] is None else nodes[f]
          y = _cell_edge(k, source, self.arch[k], train, self.affine)
        elif weights is not None:
          y = _cell_edge_mixed(k, nodes[f], weights[k], train, self.affine)
        else:
          y = _cell_edge_all(k, nodes[f], encoding[k], train, self.affine)
        if y is not None:
          total = y if total is None else total + y
      # A node whose inputs are all `none` is zero (the reference sums Zero ops).
      nodes.append(total if total is not None or self.arch is not None else jnp.zeros_like(x))
    return jnp.zeros_like(x) if nodes[-1] is None else nodes[-1]


class NB201Network(nn.Module):
  """NB201 `TinyNetwork`: array build (arch=None, call with encoding) or fixed build of `arch`.

  The array build also takes `weights` float32[6, 5] instead of an encoding: every edge is then
  the DARTS mixed op sum_o weights[k, o] * o(x) over the same parameters (a one-hot row equals
  the encoding's op). `affine=False` drops the BN scale/bias of the cell ops (DARTS search).
  """

  channels: int = 16
  cells_per_stage: int = 5
  num_classes: int = 10
  arch: tuple[int, ...] | None = None
  affine: bool = True

  @nn.compact
  def __call__(self, x, encoding=None, train: bool = False, weights=None):
    if weights is not None:
      weights = check_weights("NAS-Bench-201", self.arch, encoding, weights, WEIGHTS_SHAPE)
    else:
      encoding = check_call("NAS-Bench-201", self.arch, encoding, _BOUNDS)
    c = self.channels
    x = nn.Conv(c, (3, 3), padding=((1, 1), (1, 1)), use_bias=False, name="stem_conv")(x)
    x = batch_norm(train, True, "stem_bn")(x)
    layer = 0
    for stage in range(3):
      if stage > 0:
        x = ResNetBasicBlock(c * 2**stage, 2, name=f"layer{layer}")(x, train)
        layer += 1
      for _ in range(self.cells_per_stage):
        x = NB201Cell(self.arch, self.affine, name=f"layer{layer}")(x, encoding, train, weights)
        layer += 1
    x = nn.relu(batch_norm(train, True, "lastact_bn")(x))
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes, name="classifier")(x)


_BOUNDS = np.full((enc201.NUM_EDGES,), enc201.NUM_OPS, dtype=np.int32)
WEIGHTS_SHAPE = (enc201.NUM_EDGES, enc201.NUM_OPS)  # the `weights` of the relaxed array build


def nb201_cost(
  arch: tuple[int, ...], channels: int, cells_per_stage: int, num_classes: int, input_size: int
) -> tuple[int, int]:
  """(MACs per example, params) of the fixed NB201 network, analytically."""
  c, h = channels, input_size
  macs, params = 27 * c * h * h, 27 * c + 2 * c  # stem conv + BN
  for stage in range(3):
    if stage > 0:
      m, p = resnet_block_cost(c, 2 * c, h, h, 2)
      macs, params, c, h = macs + m, params + p, 2 * c, h // 2
    cell_m = cell_p = 0
    for op in arch:
      m, p = op_cost(enc201.OPS[op], c, h, h, 1)
      cell_m, cell_p = cell_m + m, cell_p + p
    macs, params = macs + cells_per_stage * cell_m, params + cells_per_stage * cell_p
  params += 2 * c  # last BN
  macs, params = macs + c * num_classes + num_classes, params + c * num_classes + num_classes
  return macs, params


@dataclasses.dataclass(frozen=True)
class NB201Space(SearchSpace):
  """The NAS-Bench-201 space with its macro config (C, N, classes, input resolution)."""

  channels: int = 16
  cells_per_stage: int = 5
  num_classes: int = 10
  input_size: int = 32

  name = "NAS-Bench-201"
  OPS = enc201.OPS
  EDGES = enc201.EDGES

  def __post_init__(self):
    for field in ("channels", "cells_per_stage", "num_classes", "input_size"):
      v = getattr(self, field)
      if (
        not isinstance(v, int)
        or isinstance(v, bool)
        or v < (0 if field == "cells_per_stage" else 1)
      ):
        what = "a non-negative" if field == "cells_per_stage" else "a positive"
        raise ConfigError(f"NB201Space.{field} must be {what} integer, got {v!r}")
    _check_size(self.input_size)

  def bounds(self) -> np.ndarray:
    return _BOUNDS.copy()

  def describe_position(self, i: int) -> str:
    if 0 <= i < enc201.NUM_EDGES:
      to, frm = enc201.EDGES[i]
      return f"op of edge {i} ({to}<-{frm})"
    return super().describe_position(i)

  def validate(self, enc) -> None:
    enc201.validate(enc)

  def sample(self, key: jax.Array, n: int) -> jax.Array:
    return enc201.sample(key, n)

  def mutate(self, key: jax.Array, enc: jax.Array, prob) -> jax.Array:
    return enc201.mutate(key, enc, prob)

  def mutate_one(self, key: jax.Array, enc: jax.Array) -> jax.Array:
    return enc201.mutate_one(key, enc)

  def crossover(self, key: jax.Array, a: jax.Array, b: jax.Array) -> jax.Array:
    return enc201.crossover(key, a, b)

  def enumerate(self) -> np.ndarray:
    return np.asarray(enc201.enumerate_all())

  def to_string(self, enc) -> str:
    return enc201.to_string(self.as_arch(enc))

  def from_string(self, s: str) -> np.ndarray:
    return np.asarray(enc201.from_string(s), dtype=np.int32)

  def index(self, enc) -> int:
    """Base-5 index of an encoding (edge 0 most significant), as `nb201_encoding`."""
    return int(enc201.encoding_to_index(self.as_arch(enc)))

  def _cost(self, enc, input_size, channels, num_classes, which: int):
    c = self.channels if channels is None else channels
    h = self.input_size if input_size is None else input_size
    nc = self.num_classes if num_classes is None else num_classes
    _check_size(h)
    return self._per_encoding(enc, lambda a: nb201_cost(a, c, self.cells_per_stage, nc, h)[which])

  def flops(self, enc, input_size: int | None = None, channels: int | None = None):
    """MACs per example (the NB201 API's 'flops' is this / 1e6)."""
    return self._cost(enc, input_size, channels, None, 0)

  def params(self, enc, channels: int | None = None, num_classes: int | None = None):
    """Parameter count (the NB201 API's 'params' in MB is this / 1e6)."""
    return self._cost(enc, None, channels, num_classes, 1)

  def network(self, arch=None) -> NB201Network:
    fixed = None if arch is None else self.as_arch(arch)
    return NB201Network(self.channels, self.cells_per_stage, self.num_classes, fixed)


def _check_size(h: int) -> None:
  if h < 4 or h % 4:
    raise ConfigError(
      f"NAS-Bench-201 input size must be a multiple of 4 (two stride-2 ResNet blocks with "
      f"2x2 avg-pool shortcuts), got {h}"
    )
