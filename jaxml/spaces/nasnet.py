"""NASNet-style cell spaces (Zoph et al., CVPR 2018), shared by the DARTS and EcoNAS spaces.

A network stacks normal and reduction cells. Each cell has two inputs, the outputs of the two
previous cells, preprocessed to C channels (1x1 ReLU-Conv-BN; FactorizedReduce for the older one
when the previous cell reduced), then B nodes ("blocks"); node b adds two slots, each an op
applied to one earlier state (index 0, 1 = the cell inputs, 2 + b' = node b'). The cell outputs
the channel concatenation of all B nodes (DARTS's `concat=range(2, 2 + B)`). In a reduction
cell the ops on the cell inputs have stride 2 (DARTS `Cell._compile`).

Encoding: int32[2 cells x B nodes x 2 slots x 2] = [cell][node][slot][(input, op)], the normal
cell first; position (input of node b) ranges over 0..b+1, (op) over the op list. Strings are
DARTS genotypes (`jaxml.spaces.genotype`).

Deviation from NASNet: NASNet concatenates only the states no node consumed, so the output width
depends on the architecture. Here (as in DARTS) all B nodes are concatenated, so every
architecture of the space has the same tensor shapes and K of them form one batched pytree.

Parameter names (both builds): cell i is `cell{i}`, its preprocessing `pre0` / `pre1`, and the
op of slot s of node b is `node{b}_slot{s}_{op}`, with suffix `_s2` for the stride-2 version in
reduction cells. Parameters belong to slots, not edges, as in the reference DARTS model (two
slots of a node with the same input and op have separate weights). The array build selects each
slot's input by index and runs every candidate op on it (reduction cells: once on the selected
cell input at stride 2 and once on the selected node at stride 1), then selects the op.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import ClassVar

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from jaxml.errors import ConfigError
from jaxml.spaces.base import SearchSpace, check_call, check_weights, mix, select
from jaxml.spaces.genotype import CELL_TYPES, parse_genotype, position, to_genotype
from jaxml.spaces.ops import (
  FactorizedReduce,
  ReLUConvBN,
  batch_norm,
  build_op,
  factorized_reduce_cost,
  op_cost,
  out_size,
  relu_conv_bn_cost,
)


def encoding_bounds(num_nodes: int, num_ops: int) -> np.ndarray:
  """int32[8B]: node b's inputs range over b + 2 states, ops over the op list."""
  bounds = np.empty((8 * num_nodes,), dtype=np.int32)
  for cell in range(2):
    for b in range(num_nodes):
      for s in range(2):
        bounds[position(cell, b, s, 0, num_nodes)] = b + 2
        bounds[position(cell, b, s, 1, num_nodes)] = num_ops
  return bounds


def describe(i: int, num_nodes: int) -> str:
  """'reduce cell, node 2, slot 1, input index' for position i."""
  kind, rest = i % 2, i // 2
  slot, rest = rest % 2, rest // 2
  node, cell = rest % num_nodes, rest // num_nodes
  what = "input index" if kind == 0 else "op index"
  return f"{CELL_TYPES[cell]} cell, node {node}, slot {slot}, {what}"


def reduction_layout(stages: Sequence[int]) -> tuple[bool, ...]:
  """Layout of normal cells per stage with one reduction cell between stages."""
  layout: list[bool] = []
  for i, n in enumerate(stages):
    if i:
      layout.append(True)
    layout += [False] * n
  return tuple(layout)


def mixed_edges(num_nodes: int) -> tuple[tuple[int, int], ...]:
  """(node b, input j) of every edge of the DARTS search cell, in row order of its `weights`:
  node b has an edge from each of its b + 2 possible inputs (14 edges for 4 nodes)."""
  return tuple((b, j) for b in range(num_nodes) for j in range(b + 2))


# --- Flax modules -----------------------------------------------------------------------------


def _slot_name(b: int, s: int, op: str, stride: int) -> str:
  return f"node{b}_slot{s}_{op}" + ("_s2" if stride == 2 else "")


def _fixed_slot(arch, b, s, states, c, reduction, ops, train, affine, num_nodes):
  j = arch[position(0, b, s, 0, num_nodes)]
  op = ops[arch[position(0, b, s, 1, num_nodes)]]
  stride = 2 if reduction and j < 2 else 1
  return build_op(op, c, stride, affine, _slot_name(b, s, op, stride))(states[j], train)


def _array_slot(enc, b, s, states, c, reduction, ops, train, affine, num_nodes):
  j = enc[position(0, b, s, 0, num_nodes)]
  o = enc[position(0, b, s, 1, num_nodes)]
  # Group the candidate inputs by the stride their ops need (inputs 0, 1 of a reduction cell).
  groups = [(0, states[:2], 2), (2, states[2:], 1)] if reduction else [(0, states, 1)]
  out = None
  for offset, group, stride in groups:
    if not group:
      continue
    x = select(group, j - offset)
    cands = [
      None
      if op == "none"
      else build_op(op, c, stride, affine, _slot_name(b, s, op, stride))(x, train)
      for op in ops
    ]
    y = select(cands, o, like=x[:, ::stride, ::stride, :])
    out = y if out is None else jnp.where(j < 2, out, y)
  return out


def _edge_name(b: int, j: int, op: str, stride: int) -> str:
  return f"node{b}_edge{j}_{op}" + ("_s2" if stride == 2 else "")


def _mixed_node(weights, b, states, c, reduction, ops, train, affine):
  """Node b of the DARTS search cell: sum over every earlier state j of the mixed op
  sum_o weights[e, o] * o(state_j) (Liu et al., ICLR 2019, eq. 1-2); e = edge (b, j)."""
  first = sum(k + 2 for k in range(b))  # row of edge (b, 0) in `mixed_edges`
  total = None
  for j, h in enumerate(states):
    stride = 2 if reduction and j < 2 else 1
    cands = [
      None
      if op == "none"
      else build_op(op, c, stride, affine, _edge_name(b, j, op, stride))(h, train)
      for op in ops
    ]
    y = mix(cands, weights[first + j], like=h[:, ::stride, ::stride, :])
    total = y if total is None else total + y
  return total


class NASNetCell(nn.Module):
  """One cell. `arch` (this cell's 4B ints) given: fixed build; else `encoding` int[4B] input,
  or `weights` float[E, O] (the DARTS search cell: every node a sum of mixed ops over all its
  possible inputs, E = `mixed_edges`; parameters `node{b}_edge{j}_{op}` per edge, not per slot).
  """

  ops: tuple[str, ...]
  num_nodes: int
  channels: int
  reduction: bool = False
  reduction_prev: bool = False
  arch: tuple[int, ...] | None = None
  affine: bool = True

  @nn.compact
  def __call__(self, s0, s1, encoding=None, train: bool = False, weights=None):
    c, a = self.channels, self.affine
    if self.reduction_prev:
      s0 = FactorizedReduce(c, a, name="pre0")(s0, train)
    else:
      s0 = ReLUConvBN(c, 1, 1, a, name="pre0")(s0, train)
    s1 = ReLUConvBN(c, 1, 1, a, name="pre1")(s1, train)
    states = [s0, s1]
    for b in range(self.num_nodes):
      if weights is not None:
        states.append(_mixed_node(weights, b, states, c, self.reduction, self.ops, train, a))
        continue
      if self.arch is not None:
        ys = [
          _fixed_slot(
            self.arch, b, s, states, c, self.reduction, self.ops, train, a, self.num_nodes
          )
          for s in (0, 1)
        ]
      else:
        ys = [
          _array_slot(encoding, b, s, states, c, self.reduction, self.ops, train, a, self.num_nodes)
          for s in (0, 1)
        ]
      states.append(ys[0] + ys[1])
    return jnp.concatenate(states[2:], axis=-1)


class NASNetNetwork(nn.Module):
  """DARTS `NetworkCIFAR` macro: stem 3x3 conv (stem_multiplier*C) + BN, cells, avg pool, dense.

  `layout[i]` says whether cell i reduces (stride 2, channels doubled). No auxiliary head, no
  drop-path. `arch` given: fixed build; else call with an encoding int[8B], or with `weights`
  float32[2E, O] (rows 0..E-1 the normal cell's edges, E..2E-1 the reduction cell's, in
  `mixed_edges` order): the DARTS search network, every edge a mixed op. `affine=False` drops
  the BN scale/bias inside the cells (DARTS search).
  """

  ops: tuple[str, ...]
  num_nodes: int
  layout: tuple[bool, ...]
  channels: int = 36
  num_classes: int = 10
  stem_multiplier: int = 3
  arch: tuple[int, ...] | None = None
  space_name: str = "NASNet-style"
  affine: bool = True

  @nn.compact
  def __call__(self, x, encoding=None, train: bool = False, weights=None):
    n_edges = len(mixed_edges(self.num_nodes))
    if weights is not None:
      shape = (2 * n_edges, len(self.ops))
      weights = check_weights(self.space_name, self.arch, encoding, weights, shape)
    else:
      encoding = check_call(
        self.space_name, self.arch, encoding, encoding_bounds(self.num_nodes, len(self.ops))
      )
    cs = self.stem_multiplier * self.channels
    x = nn.Conv(cs, (3, 3), padding=((1, 1), (1, 1)), use_bias=False, name="stem_conv")(x)
    s0 = s1 = batch_norm(train, True, "stem_bn")(x)
    c, reduction_prev, per_cell = self.channels, False, 4 * self.num_nodes
    for i, reduction in enumerate(self.layout):
      c = 2 * c if reduction else c
      part = slice(per_cell, 2 * per_cell) if reduction else slice(0, per_cell)
      cell = NASNetCell(
        self.ops,
        self.num_nodes,
        c,
        reduction,
        reduction_prev,
        None if self.arch is None else self.arch[part],
        self.affine,
        name=f"cell{i}",
      )
      w = None
      if weights is not None:
        w = weights[n_edges:] if reduction else weights[:n_edges]
      s0, s1 = s1, cell(s0, s1, None if encoding is None else encoding[part], train, w)
      reduction_prev = reduction
    return nn.Dense(self.num_classes, name="classifier")(jnp.mean(s1, axis=(1, 2)))


def nasnet_cost(
  arch: Sequence[int],
  ops: Sequence[str],
  num_nodes: int,
  layout: Sequence[bool],
  channels: int,
  num_classes: int,
  stem_multiplier: int,
  input_size: int,
) -> tuple[int, int]:
  """(MACs per example, params) of the fixed `NASNetNetwork`, analytically."""
  h, cs = input_size, stem_multiplier * channels
  macs, params = 27 * cs * h * h, 27 * cs + 2 * cs
  c_pp = c_p = cs
  h_pp = h_p = h
  c, reduction_prev = channels, False
  for reduction in layout:
    c = 2 * c if reduction else c
    if reduction_prev:
      m0, p0 = factorized_reduce_cost(c_pp, c, h_pp, h_pp)
    else:
      m0, p0 = relu_conv_bn_cost(c_pp, c, 1, h_pp, h_pp)
    m1, p1 = relu_conv_bn_cost(c_p, c, 1, h_p, h_p)
    macs, params = macs + m0 + m1, params + p0 + p1
    h_out = out_size(h_p, 2) if reduction else h_p
    cell = 1 if reduction else 0
    for b in range(num_nodes):
      for s in range(2):
        j = arch[position(cell, b, s, 0, num_nodes)]
        op = ops[arch[position(cell, b, s, 1, num_nodes)]]
        stride = 2 if reduction and j < 2 else 1
        h_in = h_p if j < 2 else h_out
        m, p = op_cost(op, c, h_in, h_in, stride)
        macs, params = macs + m, params + p
    c_pp, c_p, h_pp, h_p = c_p, num_nodes * c, h_p, h_out
    reduction_prev = reduction
  return macs + c_p * num_classes + num_classes, params + c_p * num_classes + num_classes


class NASNetSpace(SearchSpace):
  """Shared `SearchSpace` implementation of the NASNet-style spaces (DARTS, EcoNAS).

  Subclasses are frozen dataclasses with fields `channels`, `num_classes`, `input_size`,
  `stem_multiplier`, and provide `OPS`, `num_nodes` and `layout()`.
  """

  OPS: ClassVar[tuple[str, ...]] = ()
  crossover_unit = 2  # swap whole (input, op) slots

  num_nodes: int
  channels: int
  num_classes: int
  input_size: int
  stem_multiplier: int

  @abc.abstractmethod
  def layout(self) -> tuple[bool, ...]:
    """Reduction flag of each cell of the network."""

  def _check_fields(self, fields: Sequence[str]) -> None:
    for field in fields:
      v = getattr(self, field)
      if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise ConfigError(f"{type(self).__name__}.{field} must be a positive integer, got {v!r}")

  def bounds(self) -> np.ndarray:
    return encoding_bounds(self.num_nodes, len(self.OPS))

  def describe_position(self, i: int) -> str:
    if 0 <= i < self.encoding_length:
      return describe(i, self.num_nodes)
    return super().describe_position(i)

  def to_string(self, enc) -> str:
    return to_genotype(self.as_arch(enc), self.OPS, self.num_nodes)

  def from_string(self, s: str) -> np.ndarray:
    return parse_genotype(s, self.OPS, self.num_nodes, self.name)

  def _cost(self, enc, input_size, channels, num_classes, which: int):
    c = self.channels if channels is None else channels
    h = self.input_size if input_size is None else input_size
    nc = self.num_classes if num_classes is None else num_classes
    layout = self.layout()
    return self._per_encoding(
      enc,
      lambda a: nasnet_cost(a, self.OPS, self.num_nodes, layout, c, nc, self.stem_multiplier, h)[
        which
      ],
    )

  def flops(self, enc, input_size: int | None = None, channels: int | None = None):
    return self._cost(enc, input_size, channels, None, 0)

  def params(self, enc, channels: int | None = None, num_classes: int | None = None):
    return self._cost(enc, None, channels, num_classes, 1)

  def network(self, arch=None) -> NASNetNetwork:
    fixed = None if arch is None else self.as_arch(arch)
    return NASNetNetwork(
      self.OPS,
      self.num_nodes,
      self.layout(),
      self.channels,
      self.num_classes,
      self.stem_multiplier,
      fixed,
      self.name,
    )
