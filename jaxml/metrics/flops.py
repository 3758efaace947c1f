"""Model FLOPs of any JAX function, counted on its jaxpr: the convolutions and matrix products.

MFU (model FLOPs utilisation, Chowdhery et al. 2022, "PaLM", Appendix B) divides the FLOPs the
model needs by the time taken and the device's peak; by convention only the matrix work counts
(elementwise ops, normalisation and the optimizer are < 2 % of a convnet's step). Counting on the
jaxpr makes the number the same on every backend: XLA's own cost analysis counts the lowered
module only on CPU (on GPU, jax 0.11 returns none), and after optimisation it misses the convs
that became cuDNN library calls (0.12 GFLOP per ResNet-50 train image on an H200, not ~7.8).

A multiply-add is 2 FLOPs. A convolution output element sums over the kernel's spatial window
times its input features (per group), padding included; in a transposed conv (lhs dilation d)
only 1/d of the taps meet real inputs, so only those count. A dot_general output element sums
over its contracted dimensions. Called sub-jaxprs (jit, custom_vjp/jvp, remat, shard_map
bodies) are counted once per call, `scan` bodies `length` times, the largest `cond` branch, and
`while` bodies once (their trip count is not static).
"""

import math
from collections.abc import Callable

import jax
from jax.extend import core


def count_flops(fn: Callable, *args, **kwargs) -> float:
  """FLOPs of the convolutions and matrix products of one call `fn(*args, **kwargs)`."""
  return jaxpr_flops(jax.make_jaxpr(fn)(*args, **kwargs).jaxpr)


def jaxpr_flops(jaxpr: core.Jaxpr) -> float:
  total = 0.0
  for eqn in jaxpr.eqns:
    total += _eqn_flops(eqn)
  return total


def _eqn_flops(eqn) -> float:
  name = eqn.primitive.name
  if name == "dot_general":
    (lhs_contract, _), _ = eqn.params["dimension_numbers"]
    lhs = eqn.invars[0].aval.shape
    return 2.0 * _size(eqn.outvars[0].aval.shape) * math.prod(lhs[d] for d in lhs_contract)
  if name == "conv_general_dilated":
    rhs = eqn.invars[1].aval.shape
    rhs_spec = eqn.params["dimension_numbers"].rhs_spec  # (out feature, in feature, spatial...)
    window = rhs[rhs_spec[1]] * math.prod(rhs[d] for d in rhs_spec[2:])
    # A transposed conv (the input gradient of a strided conv) dilates its input with zeros:
    # only 1 / prod(lhs_dilation) of the window's taps meet real values.
    window /= math.prod(eqn.params["lhs_dilation"])
    return 2.0 * _size(eqn.outvars[0].aval.shape) * window
  subs = [_sub_flops(v) for v in eqn.params.values()]
  if name == "cond":
    return max(subs, default=0.0)
  if name == "scan":
    return eqn.params["length"] * sum(subs)
  return sum(subs)


def _sub_flops(value) -> float:
  """FLOPs of the jaxpr(s) held in one equation parameter (0 for anything else)."""
  if isinstance(value, core.ClosedJaxpr):
    return jaxpr_flops(value.jaxpr)
  if isinstance(value, core.Jaxpr):
    return jaxpr_flops(value)
  if isinstance(value, tuple | list):
    # cond's branches arrive as a tuple: the caller takes their max via `subs`.
    flops = [_sub_flops(v) for v in value]
    return max(flops, default=0.0)
  return 0.0


def _size(shape) -> int:
  return math.prod(shape)
