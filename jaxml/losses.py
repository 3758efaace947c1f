"""The AM-LFS loss family (Li et al., "AM-LFS: AutoML for Loss Function Search", ICCV 2019, §3).

One example's loss is

    L = -log tau(p^t_y),   p^t_y = exp(t(f_y)) / (exp(t(f_y)) + sum_{j != y} exp(f_j))    (1)

where f are the logits, y the label, t transforms the target logit (the paper's margin view:
SphereFace, CosFace and ArcFace are choices of t on cosine logits s * cos(theta_j)) and tau
re-weights examples by how well they are fitted (Focal loss is tau(p) = p^((1-p)^gamma)). Both
are piecewise linear on M equal intervals of a fixed domain (the paper's knots zeta_i):

* `t` lives on cosines, [-1, 1]; it is used only with a cosine classifier head whose logits are
  `scale * cos` (`t_params=None`: t is the identity, plain logits are fine).
* `tau` lives on probabilities, [0, 1], and is normalised to tau(1) = 1: -log(c * tau) differs
  from -log tau by a constant, so the scale of tau changes no gradient and is left out of the
  search space.

Parametrisation (`PiecewiseLinear`): params = [offset, log_slope_0 .. log_slope_{M-1}]. The
slope of interval i is exp(log_slope_i) > 0 and the knot values are the running sum of
slope * width from the start value, so every point of R^(M+1) is a continuous, strictly
increasing function, and params = 0 is the identity: with both at 0, (1) is softmax
cross-entropy exactly. Continuity and monotonicity are what make -log tau a loss that still
prefers fitting the label (the paper's constraint on the a_i, b_i of its linear pieces).

tau's offset is tau(0) = relu(offset) / normaliser >= 0: 0 keeps -log tau(p) -> inf as p -> 0
like cross-entropy; > 0 bounds the loss of badly fitted examples (a robust loss for noisy
labels). The relu costs nothing here: the search moves the params by REINFORCE on sampled
values, never by their gradient.

Special cases (tests/test_losses.py): CosFace's t(x) = x - m is a point of the family; ArcFace's
cos(acos x + m) is approximated to O(width^2) where it increases (x > cos(pi - m)); Focal's
tau(p) = p^((1-p)^gamma) is approximated by interpolation at the knots. SphereFace's
cos(m acos x) decreases on part of [-1, 1] for m >= 2, so like ArcFace's decreasing end it is
outside a family of increasing functions.

Default M = 5 (`DEFAULT_INTERVALS`): the paper does not publish M. Five intervals of 0.2 give
the fitted / ambiguous / badly-fitted regions of p their own slope, while keeping the Gaussian
search at 6 dimensions, which K = 8 copies per REINFORCE step can still estimate.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxml.errors import ConfigError

DEFAULT_INTERVALS = 5


@dataclasses.dataclass(frozen=True)
class PiecewiseLinear:
  """A continuous, increasing piecewise-linear function on [lo, hi] with M equal intervals.

  params f32[M + 1]: [offset, log_slope_0, ..., log_slope_{M-1}]; f(lo) = lo + offset, slope of
  interval i = exp(log_slope_i). params = 0 is the identity. Outside [lo, hi] the end pieces
  extend linearly.
  """

  lo: float
  hi: float
  num_intervals: int = DEFAULT_INTERVALS

  def __post_init__(self):
    if int(self.num_intervals) < 1:
      raise ConfigError(f"a piecewise-linear function needs >= 1 interval: {self.num_intervals}")
    if not self.hi > self.lo:
      raise ConfigError(f"a piecewise-linear domain needs hi > lo, got [{self.lo}, {self.hi}]")

  @property
  def num_params(self) -> int:
    return self.num_intervals + 1

  @property
  def width(self) -> float:
    return (self.hi - self.lo) / self.num_intervals

  def knots(self) -> np.ndarray:
    """The M + 1 interval ends zeta_0 = lo < ... < zeta_M = hi."""
    return np.linspace(self.lo, self.hi, self.num_intervals + 1)

  def knot_values(self, params: jax.Array, start: jax.Array | None = None) -> jax.Array:
    """f32[..., M + 1]: f at the knots; `start` replaces f(lo) = lo + offset when given."""
    params = jnp.asarray(params, jnp.float32)
    f0 = self.lo + params[..., 0] if start is None else start
    rises = jnp.exp(params[..., 1:]) * self.width
    return jnp.concatenate([f0[..., None], f0[..., None] + jnp.cumsum(rises, axis=-1)], axis=-1)

  def interval(self, x: jax.Array) -> jax.Array:
    """int32 index of the interval holding x (end intervals for x outside [lo, hi])."""
    k = jnp.floor((x - self.lo) / self.width).astype(jnp.int32)
    return jnp.clip(k, 0, self.num_intervals - 1)

  def __call__(self, params: jax.Array, x: jax.Array) -> jax.Array:
    """f(x) for one params vector f32[M + 1] and any x."""
    x = jnp.asarray(x, jnp.float32)
    values, k = self.knot_values(params), self.interval(x)
    left = self.lo + k.astype(jnp.float32) * self.width
    return values[k] + jnp.exp(jnp.asarray(params, jnp.float32)[1:])[k] * (x - left)

  def params_from_function(self, fn) -> np.ndarray:
    """The params whose function interpolates `fn` at the knots (fn increasing on [lo, hi]).

    E.g. CosFace's t(x) = x - m is reproduced exactly; ArcFace's is approximated to O(width^2).
    """
    z = self.knots()
    v = np.asarray(fn(z), np.float64)
    rises = np.diff(v)
    if np.any(rises <= 0):
      raise ValueError("params_from_function needs a strictly increasing function at the knots")
    return np.concatenate([[v[0] - self.lo], np.log(rises / self.width)]).astype(np.float32)


def tau_function(num_intervals: int = DEFAULT_INTERVALS) -> PiecewiseLinear:
  return PiecewiseLinear(0.0, 1.0, num_intervals)


def t_function(num_intervals: int = DEFAULT_INTERVALS) -> PiecewiseLinear:
  return PiecewiseLinear(-1.0, 1.0, num_intervals)


def log_tau(tau: PiecewiseLinear, params: jax.Array, log_p: jax.Array) -> jax.Array:
  """log tau(p) from log p, tau normalised to tau(1) = 1 with tau(0) = relu(offset) (above).

  On interval k, tau(p) * norm = a_k p + c_k with c_k = f(zeta_k) - a_k zeta_k, so
  log tau = log a_k + log p + log1p(c_k / (a_k p)) - log norm: at the identity c_k ~ 0 and the
  loss is -log p to float32 rounding. In the first interval c_0 = tau(0) >= 0 and the value is a
  logaddexp of log p (never exp'd: p = 1e-40 is fine). The branch not taken gets a safe
  argument so its gradient cannot turn into NaN through `where`.
  """
  params = jnp.asarray(params, jnp.float32)
  start = jax.nn.relu(params[0])
  values = tau.knot_values(params, start=start)
  log_slopes = params[1:]
  p = jnp.exp(log_p)
  k = tau.interval(p)
  first = jnp.logaddexp(jnp.log(start), log_slopes[0] + log_p)
  offsets = values[:-1] - jnp.exp(log_slopes) * jnp.asarray(tau.knots()[:-1], jnp.float32)
  p_safe = jnp.where(k == 0, 1.0, p)  # p >= width where taken
  later = log_slopes[k] + log_p + jnp.log1p(offsets[k] / (jnp.exp(log_slopes[k]) * p_safe))
  return jnp.where(k == 0, first, later) - jnp.log(values[-1])


def amlfs_loss(
  logits: jax.Array,
  labels: jax.Array,
  tau: PiecewiseLinear,
  tau_params: jax.Array,
  t: PiecewiseLinear | None = None,
  t_params: jax.Array | None = None,
  scale: float = 1.0,
) -> jax.Array:
  """Per-example loss (1): -log tau(p^t_y). f32[B] from logits f32[B, C] and int labels [B].

  With `t`, `logits` must be `scale * cos` of a cosine head: the target's cosine goes through t
  and is scaled back. tau_params = 0 and t = None is softmax cross-entropy.
  """
  logits = jnp.asarray(logits, jnp.float32)
  if t is not None:
    cos_y = jnp.take_along_axis(logits, labels[:, None], axis=-1)[:, 0] / scale
    target = scale * t(t_params, cos_y)
    is_target = jax.nn.one_hot(labels, logits.shape[-1], dtype=bool)
    logits = jnp.where(is_target, target[:, None], logits)
  log_p = jnp.take_along_axis(jax.nn.log_softmax(logits, axis=-1), labels[:, None], axis=-1)[:, 0]
  return -log_tau(tau, tau_params, log_p)


# Closed forms of the special cases (for tests, plots and `params_from_function`).
def cosface_t(x, margin: float):
  """CosFace (Wang et al. 2018): t(cos) = cos - m."""
  return x - margin


def arcface_t(x, margin: float):
  """ArcFace (Deng et al. 2019): t(cos) = cos(acos(cos) + m); increasing for cos > cos(pi - m)."""
  return np.cos(np.arccos(np.clip(x, -1.0, 1.0)) + margin)


def focal_tau(p, gamma: float):
  """Focal loss (Lin et al. 2017) as a tau: -log tau(p) = -(1 - p)^gamma log p."""
  p = np.asarray(p, np.float64)
  with np.errstate(divide="ignore"):
    return np.where(p > 0, np.exp((1.0 - p) ** gamma * np.log(np.maximum(p, 1e-300))), 0.0)
