"""The continuous relaxation of a cell space (DARTS, Liu et al., ICLR 2019, §2.2) and its
Gumbel-softmax sampling variant (GDAS, Dong & Yang, CVPR 2019, eq. 3-5; SNAS, Xie et al., 2019).

Architecture parameters alpha float32[E, O] hold one logit per (edge, op) of a space's search
network (`weights_shape`); the network's array build, called with `weights=` instead of an
encoding, makes every edge the mixed op sum_o w[e, o] * o(x) (`jaxml.spaces.base.mix`):

- DARTS: w = softmax(alpha) over the ops of each edge (eq. 1);
- Gumbel (GDAS): h = one_hot(argmax(alpha + g)), g ~ Gumbel(0, 1), and the straight-through
  estimate w = h - stop_gradient(p) + p with p = softmax((alpha + g) / tau): the forward pass is
  the sampled architecture (w is one-hot up to rounding), the gradient is that of p.

Edges: NAS-Bench-201 has the 6 edges of its cell (`nb201_encoding.EDGES`); the DARTS space has
the 14 edges (node b, input j < b + 2) of the normal cell, then the 14 of the reduction cell
(`nasnet.mixed_edges`). The discrete architecture (`derive`) takes the argmax op of every edge,
excluding `none` (DARTS §2.4); in the DARTS space each node keeps its 2 strongest incoming
edges, an edge's strength being its largest non-`none` weight (quark0/darts `genotype()`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxml.errors import ConfigError
from jaxml.spaces import nb201_encoding as enc201
from jaxml.spaces.base import SearchSpace
from jaxml.spaces.genotype import CELL_TYPES, position
from jaxml.spaces.nasnet import NASNetSpace, mixed_edges
from jaxml.spaces.nb201 import WEIGHTS_SHAPE, NB201Space


def weights_shape(space: SearchSpace) -> tuple[int, int]:
  """(E, O): edges x candidate ops of the space's relaxed network."""
  if isinstance(space, NB201Space):
    return WEIGHTS_SHAPE
  if isinstance(space, NASNetSpace):
    return (2 * len(mixed_edges(space.num_nodes)), len(space.OPS))
  raise ConfigError(f"no continuous relaxation for the {space.name} space")


def edge_labels(space: SearchSpace) -> list[str]:
  """A short label per edge row (for plots): NB201 '2<-1', DARTS 'normal n1<-s0'."""
  if isinstance(space, NB201Space):
    return [f"{t}<-{f}" for t, f in enc201.EDGES]
  edges = mixed_edges(space.num_nodes)
  return [f"{cell} n{b}<-s{j}" for cell in CELL_TYPES for b, j in edges]


def softmax_weights(alpha: jax.Array) -> jax.Array:
  """DARTS eq. 1: the op weights of every edge, softmax over its ops."""
  return jax.nn.softmax(alpha, axis=-1)


def gumbel_weights(key: jax.Array, alpha: jax.Array, tau) -> tuple[jax.Array, jax.Array]:
  """GDAS's straight-through hard sample: (weights [E, O], sampled op per edge int32[E]).

  One Gumbel draw per (edge, op); the forward value is one-hot on argmax(alpha + g) (GDAS eq. 3,
  the Gumbel-max trick), the gradient that of softmax((alpha + g) / tau) (eq. 5).
  """
  g = jax.random.gumbel(key, alpha.shape, alpha.dtype)
  logits = alpha + g
  index = jnp.argmax(logits, axis=-1).astype(jnp.int32)
  hard = jax.nn.one_hot(index, alpha.shape[-1], dtype=alpha.dtype)
  soft = jax.nn.softmax(logits / tau, axis=-1)
  return hard - jax.lax.stop_gradient(soft) + soft, index


def derive(space: SearchSpace, weights) -> np.ndarray:
  """int32[L]: the discrete architecture of op weights [E, O] (argmax excluding `none`)."""
  w = np.asarray(weights, np.float64)
  if w.shape != weights_shape(space):
    raise ConfigError(f"{space.name} weights must have shape {weights_shape(space)}, got {w.shape}")
  ops = list(space.OPS)
  masked = w.copy()
  masked[:, ops.index("none")] = -np.inf
  best_op = np.argmax(masked, axis=1)
  if isinstance(space, NB201Space):
    return best_op.astype(np.int32)
  strength = masked.max(axis=1)
  edges = mixed_edges(space.num_nodes)
  enc = np.zeros(space.encoding_length, np.int32)
  for cell in range(len(CELL_TYPES)):
    base = cell * len(edges)
    for b in range(space.num_nodes):
      rows = [base + e for e, (node, _) in enumerate(edges) if node == b]
      # quark0/darts: the inputs sorted by decreasing strength (stable: ties keep the lower j).
      top = sorted(range(b + 2), key=lambda j, rows=rows: -strength[rows[j]])[:2]
      for s, j in enumerate(top):
        enc[position(cell, b, s, 0, space.num_nodes)] = j
        enc[position(cell, b, s, 1, space.num_nodes)] = best_op[rows[j]]
  return enc


def one_hot_weights(space: SearchSpace, enc) -> np.ndarray:
  """float32[E, O]: the weights under which the relaxed network computes architecture `enc`
  (its op on each chosen edge, `none` on the others). DARTS-space architectures must take two
  distinct inputs per node (the relaxed cell has one edge per input)."""
  arch = space.as_arch(enc)
  e, o = weights_shape(space)
  none = list(space.OPS).index("none")
  w = np.zeros((e, o), np.float32)
  if isinstance(space, NB201Space):
    w[np.arange(e), arch] = 1.0
    return w
  w[:, none] = 1.0
  edges = mixed_edges(space.num_nodes)
  for cell in range(len(CELL_TYPES)):
    for b in range(space.num_nodes):
      inputs = [arch[position(cell, b, s, 0, space.num_nodes)] for s in (0, 1)]
      if inputs[0] == inputs[1]:
        raise ConfigError(f"node {b} of the {CELL_TYPES[cell]} cell takes input {inputs[0]} twice")
      for s, j in enumerate(inputs):
        row = cell * len(edges) + edges.index((b, j))
        w[row] = 0.0
        w[row, arch[position(cell, b, s, 1, space.num_nodes)]] = 1.0
  return w
