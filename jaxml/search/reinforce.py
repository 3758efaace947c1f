"""REINFORCE over policies: a factorised categorical (OHL-Auto-Aug, NAS) and a diagonal Gaussian
(AM-LFS), behind one `update`.

Williams (1992): with J(theta) = E_{a ~ p_theta}[r(a)], the update of every method here is

    grad J ~= 1/N sum_n (r_n - b) grad mean_logp_n(theta),

over N model copies with rewards r_n (OHL-Auto-Aug, Lin et al., ICCV 2019, Eq. 6-7: each copy's
validation accuracy after a trunk; AM-LFS, Li et al., ICCV 2019, Alg. 1: the same for loss
parameters theta ~ N(mu, sigma I), sigma fixed). A copy does not draw a single a_n: in a trunk
it draws many (OHL: one augmentation pair per image), so log p_theta(a_n) is replaced by the
*average* log-probability of everything copy n drew, `policy.mean_log_prob(params, stats_n)`.
That needs only additive sufficient statistics of the draws (`policy.stats`), so a copy
accumulates them batch by batch inside its train step and hands them over at the trunk end.

Policies (frozen dataclasses: hashable, so they are static arguments of `jit`):

- `Categorical(F, C)`: F independent categoricals over C choices, params = logits [F, C]
  (zeros = uniform); stats = counts [F, C]; mean_logp = sum_f sum_c counts[f, c] *
  log_softmax(theta)[f, c] / sum_c counts[f, c], the per-factor average summed over factors (for
  S joint draws this is exactly 1/S sum_s log p_theta(a_s)); a factor with no counts adds 0.
  OHL: F = 1, C = 1,296 augmentation pairs; NAS-Bench-201: F = 6 edges, C = 5 ops.
- `DiagonalGaussian(D)`: x ~ N(mu, diag(sigma^2)), params {'mean' [D], 'log_std' [D]}; stats
  {'count', 'sum' [D], 'sum_sq' [D]}; mean_logp in closed form from them. `learn_log_std=False`
  (AM-LFS's fixed sigma) freezes log_std: its gradient and its update are zeroed.

Baselines b: 'mean' - the mean of the N rewards of this update (OHL); 'ema' - an exponential
moving average of past updates' mean rewards, b <- decay * b + (1 - decay) * mean(r), applied
after b is used (NAS-Bench-201's REINFORCE, momentum 0.9); the first update, having no past,
uses its own mean reward (advantage zero on average) and initialises the average with it;
'none' - b = 0; 'rank' - the advantage is the copy's centred rank, rank_n / (N - 1) - 1/2 in
[-1/2, 1/2] (ties share their mean rank), the fitness shaping of evolution strategies (Wierstra
et al., JMLR 2014; Salimans et al., 2017): only the order of the rewards counts, so one copy far
ahead or a trunk of larger spread cannot scale the step. `update` maximises J by handing -grad J
to the optax optimizer.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from jaxml.errors import ConfigError

BASELINES = ("mean", "ema", "none", "rank")
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


@dataclasses.dataclass(frozen=True)
class Categorical:
  """F independent categorical distributions over C choices; params = logits f32[F, C]."""

  num_factors: int
  num_choices: int

  def __post_init__(self):
    if int(self.num_factors) < 1 or int(self.num_choices) < 1:
      raise ConfigError(
        f"a categorical policy needs num_factors >= 1 and num_choices >= 1; got "
        f"{self.num_factors} factors with {self.num_choices} choices."
      )

  def init_params(self) -> jax.Array:
    """Zero logits f32[F, C]: the uniform policy."""
    return jnp.zeros((self.num_factors, self.num_choices), jnp.float32)

  def trainable(self) -> bool:
    """Which params leaves `update` may change (all of them)."""
    return True

  def sample(self, key: jax.Array, params: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
    """int32[*shape, F]: independent draws, one choice per factor per sample."""
    shape = tuple(shape) + (self.num_factors,)
    return jax.random.categorical(key, params, axis=-1, shape=shape).astype(jnp.int32)

  def zero_stats(self) -> jax.Array:
    return jnp.zeros((self.num_factors, self.num_choices), jnp.float32)

  def stats(self, samples: jax.Array) -> jax.Array:
    """f32[F, C]: how often each choice was drawn per factor, from samples int[..., F].

    A scatter-add, so OHL's 1,296 choices never make a [B, F, C] one-hot. Counts of successive
    batches add up (exact in float32 below 2**24 draws per choice).
    """
    samples = jnp.asarray(samples, jnp.int32).reshape(-1, self.num_factors)
    return self.zero_stats().at[jnp.arange(self.num_factors), samples].add(1.0)

  def mean_log_prob(self, params: jax.Array, stats: jax.Array) -> jax.Array:
    """f32 scalar: the per-factor average log-prob of the counted draws, summed over factors."""
    logp = jax.nn.log_softmax(params, axis=-1)
    total = jnp.sum(stats, axis=-1)
    per_factor_mean = jnp.sum(stats * logp, axis=-1) / jnp.maximum(total, 1e-12)
    return jnp.sum(jnp.where(total > 0, per_factor_mean, 0.0), axis=-1)

  def entropy(self, params: jax.Array) -> jax.Array:
    """Entropy (nats) of the joint policy = sum over factors of each factor's entropy."""
    logp = jax.nn.log_softmax(params, axis=-1)
    return -jnp.sum(jnp.exp(logp) * logp)

  def kl_from_uniform(self, params: jax.Array) -> jax.Array:
    """KL(p_theta || uniform) = sum_f (log C - H_f); 0 at the uniform policy."""
    return self.num_factors * jnp.log(self.num_choices) - self.entropy(params)

  def metrics(self, params: jax.Array) -> dict[str, jax.Array]:
    return {"entropy": self.entropy(params), "kl_from_uniform": self.kl_from_uniform(params)}


def _vector(value, dim: int, what: str) -> tuple[float, ...]:
  """A float or a length-`dim` sequence as a tuple of `dim` floats (hashable), else ConfigError."""
  arr = np.asarray(value, np.float64)
  arr = np.full((dim,), arr) if arr.ndim == 0 else arr
  if arr.shape != (dim,):
    raise ConfigError(f"DiagonalGaussian.{what} needs one value or {dim} (dim), got {value!r}")
  return tuple(float(v) for v in arr)


@dataclasses.dataclass(frozen=True)
class DiagonalGaussian:
  """x ~ N(mean, diag(exp(log_std)^2)) in D dimensions; params {'mean', 'log_std'}, f32[D] each.

  `init_mean` / `init_log_std`: a float for every dimension or one per dimension (stored as
  tuples). With `learn_log_std=False` the log-std stays at `init_log_std` for good.

  The closed-form `mean_log_prob` expands sum (x - mu)^2 = sum_sq - 2 mu sum + n mu^2 in float32,
  which loses precision when |mu| is many standard deviations larger than sigma (e.g. 1e3 sigma);
  parametrise such variables as offsets from a fixed centre.
  """

  dim: int
  learn_log_std: bool = False
  init_mean: float | tuple[float, ...] = 0.0
  init_log_std: float | tuple[float, ...] = 0.0

  def __post_init__(self):
    if int(self.dim) < 1:
      raise ConfigError(f"a Gaussian policy needs dim >= 1, got {self.dim}")
    object.__setattr__(self, "init_mean", _vector(self.init_mean, self.dim, "init_mean"))
    object.__setattr__(self, "init_log_std", _vector(self.init_log_std, self.dim, "init_log_std"))

  def init_params(self) -> dict[str, jax.Array]:
    return {
      "mean": jnp.asarray(self.init_mean, jnp.float32),
      "log_std": jnp.asarray(self.init_log_std, jnp.float32),
    }

  def trainable(self) -> dict[str, bool]:
    """Which params leaves `update` may change."""
    return {"mean": True, "log_std": bool(self.learn_log_std)}

  def sample(self, key: jax.Array, params, shape: tuple[int, ...] = ()) -> jax.Array:
    """f32[*shape, D]: mean + std * N(0, 1)."""
    noise = jax.random.normal(key, tuple(shape) + (self.dim,), jnp.float32)
    return params["mean"] + jnp.exp(params["log_std"]) * noise

  def zero_stats(self) -> dict[str, jax.Array]:
    zeros = jnp.zeros((self.dim,), jnp.float32)
    return {"count": jnp.zeros((), jnp.float32), "sum": zeros, "sum_sq": zeros}

  def stats(self, samples: jax.Array) -> dict[str, jax.Array]:
    """Additive sufficient statistics of samples f32[..., D]: count, per-dim sum and sum of x^2."""
    x = jnp.asarray(samples, jnp.float32).reshape(-1, self.dim)
    return {
      "count": jnp.asarray(x.shape[0], jnp.float32),
      "sum": jnp.sum(x, axis=0),
      "sum_sq": jnp.sum(x * x, axis=0),
    }

  def mean_log_prob(self, params, stats) -> jax.Array:
    """f32 scalar: 1/n sum_i log N(x_i; mu, sigma^2) from the statistics (0 if n = 0)."""
    mu, log_std = params["mean"], params["log_std"]
    n = stats["count"]
    sq_dev = stats["sum_sq"] - 2.0 * mu * stats["sum"] + n * mu * mu  # sum_i (x_i - mu)^2
    total = jnp.sum(-0.5 * sq_dev * jnp.exp(-2.0 * log_std) - n * (log_std + _HALF_LOG_2PI))
    return jnp.where(n > 0, total / jnp.maximum(n, 1.0), 0.0)

  def entropy(self, params) -> jax.Array:
    """sum_d (log sigma_d + 1/2 log(2 pi e))."""
    return jnp.sum(params["log_std"] + _HALF_LOG_2PI + 0.5)

  def metrics(self, params) -> dict[str, jax.Array]:
    return {"entropy": self.entropy(params)}


Policy = Categorical | DiagonalGaussian


@struct.dataclass
class ReinforceState:
  """Controller state (a pytree): policy params, optimizer state, EMA baseline, update count."""

  params: jax.Array | dict[str, jax.Array]
  opt_state: optax.OptState
  baseline: jax.Array
  step: jax.Array


def centred_ranks(rewards: jax.Array) -> jax.Array:
  """rank_n / (N - 1) - 1/2 of each reward (0 for the lowest, N - 1 for the highest; tied
  rewards share their mean rank), in [-1/2, 1/2] and summing to 0; zeros for N = 1."""
  n = rewards.shape[0]
  below = (rewards[None, :] < rewards[:, None]).sum(axis=1)
  ties = (rewards[None, :] == rewards[:, None]).sum(axis=1)
  rank = below + (ties - 1) / 2.0
  return jnp.where(n > 1, rank / max(n - 1, 1) - 0.5, 0.0).astype(jnp.float32)


def init(policy: Policy, optimizer: optax.GradientTransformation) -> ReinforceState:
  """The policy's initial params and a fresh optimizer state."""
  params = policy.init_params()
  return ReinforceState(
    params=params,
    opt_state=optimizer.init(params),
    baseline=jnp.zeros((), jnp.float32),
    step=jnp.zeros((), jnp.int32),
  )


def _frozen_to_zero(policy: Policy, tree):
  """Zeroes the leaves of a params-shaped tree that the policy does not train."""
  return jax.tree.map(lambda x, t: x if t else jnp.zeros_like(x), tree, policy.trainable())


def objective(policy: Policy, params, stats, advantage: jax.Array) -> jax.Array:
  """Surrogate J(theta) = 1/N sum_n advantage_n * mean_logp_n(theta) (advantage held constant);
  its gradient is the REINFORCE estimate above."""
  mean_logp = jax.vmap(policy.mean_log_prob, in_axes=(None, 0))(params, stats)
  return jnp.mean(jax.lax.stop_gradient(advantage) * mean_logp)


def update(
  policy: Policy,
  state: ReinforceState,
  optimizer: optax.GradientTransformation,
  stats,
  rewards: jax.Array,
  baseline: str = "mean",
  ema_decay: float = 0.9,
) -> tuple[ReinforceState, dict[str, jax.Array]]:
  """One REINFORCE step on the policy params (gradient ascent on J through `optimizer`).

  Args:
    policy: the `Categorical` or `DiagonalGaussian` the params belong to.
    state: the controller state.
    optimizer: the optax transformation `state.opt_state` belongs to (e.g. optax.adam(1e-3)).
    stats: each copy's `policy.stats`, stacked on a leading axis of N copies.
    rewards: float [N], each copy's reward.
    baseline: 'mean', 'ema', 'none' or 'rank' (see module docstring).
    ema_decay: momentum of the 'ema' baseline, in [0, 1).

  Returns:
    The new state and info: 'advantage' [N], 'mean_log_prob' [N] (before the step),
    'baseline' (the b used), 'grad_norm', and `policy.metrics` after the step ('entropy';
    categorical: 'kl_from_uniform').

  jit with `jax.jit(update, static_argnames=('policy', 'optimizer', 'baseline'))`.
  """
  if baseline not in BASELINES:
    raise ConfigError(f"REINFORCE baseline must be one of {BASELINES}; got {baseline!r}.")
  if not 0.0 <= float(ema_decay) < 1.0:
    raise ConfigError(f"REINFORCE ema_decay must lie in [0, 1); got {ema_decay}.")
  stats = jax.tree.map(lambda s: jnp.asarray(s, jnp.float32), stats)
  rewards = jnp.asarray(rewards, jnp.float32)
  n = rewards.shape[0] if rewards.ndim == 1 else -1
  want = jax.tree.map(lambda z: (n, *z.shape), policy.zero_stats())
  got = jax.tree.map(lambda s: s.shape, stats)
  if n < 0 or got != want:
    raise ValueError(
      f"update needs rewards [N] and stats with a leading copy axis N, shaped {want}; got "
      f"rewards {rewards.shape} and stats {got}."
    )

  mean_reward = jnp.mean(rewards)
  if baseline == "mean":
    b = mean_reward
  elif baseline == "ema":
    b = jnp.where(state.step == 0, mean_reward, state.baseline)
  else:
    b = jnp.zeros((), jnp.float32)
  advantage = centred_ranks(rewards) if baseline == "rank" else rewards - b

  grad_j = jax.grad(lambda params: objective(policy, params, stats, advantage))(state.params)
  grad_j = _frozen_to_zero(policy, grad_j)
  # optax minimises: descend on -J. Frozen leaves get a zero update too, so an optimizer that
  # moves params without gradient (weight decay) cannot move them either.
  neg_grad = jax.tree.map(jnp.negative, grad_j)
  updates, opt_state = optimizer.update(neg_grad, state.opt_state, state.params)
  params = optax.apply_updates(state.params, _frozen_to_zero(policy, updates))

  new_baseline = state.baseline
  if baseline == "ema":
    new_baseline = jnp.where(
      state.step == 0, mean_reward, ema_decay * state.baseline + (1.0 - ema_decay) * mean_reward
    )
  new_state = state.replace(
    params=params, opt_state=opt_state, baseline=new_baseline, step=state.step + 1
  )
  info = {
    "advantage": advantage,
    "mean_log_prob": jax.vmap(policy.mean_log_prob, in_axes=(None, 0))(state.params, stats),
    "baseline": b,
    "grad_norm": jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(grad_j))),
    **policy.metrics(params),
  }
  return new_state, info


def gradient_estimates(samples, means, rewards) -> np.ndarray:
  """A Gaussian policy's REINFORCE gradient estimates, one per update, up to the factor
  1 / sigma^2 (Williams 1992, with the mean reward as baseline): g_t = 1/K sum_n (R_tn - mean_n
  R_tn) (x_tn - mu_t) [T, D], from the draws x [T, K, D], the means mu_t they were drawn around
  [T, D] and the rewards R [T, K] (host arrays, e.g. AM-LFS's trunks.npz)."""
  x, mu, r = (np.asarray(a, np.float64) for a in (samples, means, rewards))
  return np.einsum("tk,tkd->td", r - r.mean(1, keepdims=True), x - mu[:, None]) / r.shape[1]


def direction_consistency(samples, means, rewards) -> float:
  """How steady the REINFORCE direction of a Gaussian policy is from update to update: the mean
  cosine between successive updates' `gradient_estimates`. Near 0 the updates follow noise
  (each a fresh random direction); a reward with a stable good direction gives a positive value
  (`tools/policy_snr.py` calibrates it against the signal / noise ratio). NaN for T < 2."""
  g = gradient_estimates(samples, means, rewards)
  norm = np.linalg.norm(g, axis=1)
  ok = (norm[:-1] > 0) & (norm[1:] > 0)
  if not ok.any():
    return float("nan")
  cos = np.sum(g[:-1] * g[1:], axis=1)[ok] / (norm[:-1] * norm[1:])[ok]
  return float(cos.mean())


# What the controllers call once per trunk: one compile per (policy, optimizer, baseline), then
# a dispatch per update instead of tracing the gradient op by op (~30 ms an update on the CPU,
# which dominates `tools/policy_snr.py`'s thousands of simulated updates).
jit_update = jax.jit(update, static_argnames=("policy", "optimizer", "baseline", "ema_decay"))
