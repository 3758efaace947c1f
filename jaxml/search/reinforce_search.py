"""REINFORCE over architectures, as in the NAS-Bench-201 paper's RL baseline, ask/tell.

Williams (1992) with the setup of Dong & Yang (ICLR 2020, Sec. 5; D-X-Y/AutoDL-Projects
exps/NAS-Bench-201-algos/reinforce.py): a factorised categorical policy, one logit vector per
position of the encoding (`reinforce.Categorical(L, C)`, softmax per position); each ask samples
`ask_size` architectures, tell takes their fitness as rewards and makes one Adam step on

    loss = -1/K sum_k (r_k - b) sum_e log pi(a_ke),      b = EMA of the rewards (momentum 0.9).

K = `ask_size` = 1 is the paper's one architecture per step; with real training K copies give K
rewards per step. The policy-gradient step itself (logits, Adam, baselines) is
`jaxml.search.reinforce.update`; this file only maps it onto ask/tell.

One detail differs from the NAS-Bench-201 code: there the EMA is updated with r before b is read,
here (baseline='ema') b is the EMA of the *previous* rewards, the usual REINFORCE baseline. The
two advantages differ by about a factor 0.9, which Adam's normalised step largely absorbs. Logits
start at zero (uniform policy) instead of 1e-3 * N(0, 1).

The policy needs the same number of choices at every position (NB201: 5 ops on each of 6 edges);
spaces whose positions differ (DARTS, EcoNAS: input indices vs ops) are refused. The search
returns the best architecture it has *sampled* (the NAS-Bench-201 code's `max(trace)`, not the
policy's argmax), like the other searches (`SearchResult.best_after`).
"""

import dataclasses

import jax
import numpy as np
import optax

from jaxml.errors import ConfigError
from jaxml.search import reinforce
from jaxml.spaces.base import SearchSpace

State = reinforce.ReinforceState


@dataclasses.dataclass(frozen=True)
class ReinforceSearch:
  """REINFORCE with Adam(learning_rate) on a categorical policy over `space`'s positions."""

  space: SearchSpace
  learning_rate: float = 0.01
  ema_decay: float = 0.9
  baseline: str = "ema"
  ask_size: int = 1

  def __post_init__(self):
    bounds = self.space.bounds()
    if not np.all(bounds == bounds[0]):
      raise ConfigError(
        f"REINFORCE over architectures needs the same number of choices at every position; "
        f"the {self.space.name} space has {sorted(set(bounds.tolist()))}"
      )
    if self.learning_rate <= 0:
      raise ConfigError(f"REINFORCE learning_rate must be > 0, got {self.learning_rate}")
    if self.baseline not in reinforce.BASELINES:
      raise ConfigError(f"REINFORCE baseline must be one of {reinforce.BASELINES}")
    if not 0.0 <= self.ema_decay < 1.0:
      raise ConfigError(f"REINFORCE ema_decay must lie in [0, 1), got {self.ema_decay}")
    if self.ask_size < 1:
      raise ConfigError(f"REINFORCE ask_size must be >= 1, got {self.ask_size}")

  @property
  def policy(self) -> reinforce.Categorical:
    return reinforce.Categorical(self.space.encoding_length, int(self.space.bounds()[0]))

  @property
  def optimizer(self) -> optax.GradientTransformation:
    return optax.adam(self.learning_rate)

  def init(self, key: jax.Array) -> State:
    del key  # uniform policy
    return reinforce.init(self.policy, self.optimizer)

  def ask(self, state: State, key: jax.Array) -> tuple[State, jax.Array]:
    return state, self.policy.sample(key, state.params, (self.ask_size,))

  def tell(self, state: State, candidates: jax.Array, fitness: jax.Array) -> State:
    # Each candidate is one "copy" that drew one architecture: its counts are one per position.
    stats = jax.vmap(self.policy.stats)(candidates)
    state, _ = reinforce.jit_update(
      self.policy,
      state,
      self.optimizer,
      stats,
      fitness,
      baseline=self.baseline,
      ema_decay=self.ema_decay,
    )
    return state
