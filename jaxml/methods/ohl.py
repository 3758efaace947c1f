"""OHL-Auto-Aug: Online Hyper-parameter Learning for auto-augmentation (Lin et al., ICCV 2019).

A controller on the trunk loop (`jaxml.trunks`). K copies start from the same weights; in a
trunk each copy augments every image with its own pair a ~ p_theta = softmax(theta) over the
36 x 36 = 1,296 ordered pairs (`jaxml/augment/ohl_space.py`), sampled inside the jitted step and
counted per copy. At the trunk end copy n's val accuracy acc_n is its reward and theta takes one
REINFORCE step with Adam (paper Eq. 6-7): grad J ~ 1/K sum_n (acc_n - mean acc) grad log
p_theta(a_n), log p_theta(a_n) the mean log-probability of the pairs copy n drew
(`jaxml/search/reinforce.py`). The best copy's weights, BN statistics and optimizer state then go
to all copies; the learning-rate schedule runs over the whole training as for one model.
`ohl.learn_theta=False` keeps theta uniform: the fixed-policy ablation.

`ohl.pairs_per_copy = m > 0` is a variant, not the paper: each copy draws m pairs from p_theta
at the trunk start and augments with only those (uniformly per image). Per-image sampling gives
every copy nearly the same empirical pair distribution (thousands of draws over 1,296 pairs per
trunk), so the copies' rewards carry little information about theta (RESULTS.md, evidence); with
m pairs per copy the copies really differ.
"""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxml import configs
from jaxml.augment import ohl_space
from jaxml.experiment import PopulationRun
from jaxml.metrics import plots
from jaxml.metrics.writers import write_json_atomic
from jaxml.search import reinforce
from jaxml.trunks import REWARDS, Broadcast, Controller, TrunkReport, run_trunks

# `smoke`: CPU seconds; `baseline`: the plain-training recipe; `frozen`: theta stays uniform.
VARIANTS = ("smoke", "baseline", "frozen")
POLICY = reinforce.Categorical(num_factors=1, num_choices=ohl_space.NUM_PAIRS)
# `ohl.policy`: 'joint' (the paper: one categorical over the 1,296 ordered pairs) or
# 'factorised' (a variant: the first and the second operation drawn independently, 36 + 36
# logits, p(a, b) = p1(a) p2(b)): 72 parameters learn from the same rewards as 1,296, at the price
# of not modelling which operations go well together.
POLICIES = {
  "joint": POLICY,
  "factorised": reinforce.Categorical(num_factors=2, num_choices=ohl_space.NUM_ELEMENTS),
}


def ohl_config(**overrides) -> ml_collections.ConfigDict:
  defaults = dict(
    trunk_epochs=2.0,  # T, in epochs of the train split (trunk_steps > 0 overrides it)
    trunk_steps=0,
    policy_lr=0.05,  # Adam on theta
    policy_b1=0.5,
    learn_theta=True,  # False: frozen uniform theta (ablation)
    baseline="mean",  # reward baseline: mean over copies (paper) | ema | none | rank
    pairs_per_copy=0,  # 0: a pair per image from p_theta (paper); m > 0: m pairs per copy
    policy="joint",  # joint: 1,296 logits (paper) | factorised: 36 + 36 (see POLICIES)
    reward="accuracy",  # val accuracy (paper) | neg_loss: -val cross-entropy (less noisy)
  )
  return ml_collections.ConfigDict({**defaults, **overrides})


def experiment(get_baseline, arg: str | None, name: str) -> ml_collections.ConfigDict:
  """OHL on the baseline recipe `get_baseline(arg)` (loaded by the experiment file): the same
  model, data and schedule by construction; the `baseline` variant is that recipe unchanged."""
  variants = configs.parse_variants(arg, VARIANTS, name=name, exclusive=[("baseline", "frozen")])
  c = get_baseline("smoke" if "smoke" in variants else "")
  if "smoke" in variants:  # before `baseline` returns: `smoke,baseline` is on the same schedule
    c.data.val_size = 500
    c.update(batch_size=32, num_steps=48, log_every_steps=8, eval_batch_size=500)
  if "baseline" in variants:
    return c
  c.method = "ohl"
  c.ohl = ohl_config(learn_theta="frozen" not in variants)
  c.population.update(size=8, same_init=True, same_batch=True)
  if "smoke" in variants:
    # A 48-step run is compile-bound on CPU: 'vmap' compiles one copy's graph where 'loop'
    # compiles K (measured under load: 39 s vs 92 s of training time for K=8).
    c.population.mapping = "vmap"
    c.ohl.update(trunk_steps=8, policy_lr=0.1)
  return c


def validate_config(config) -> None:
  configs.validate_reinforce_controller(config, "ohl")
  configs.check(
    config.ohl.policy in POLICIES,
    f"ohl.policy={config.ohl.policy!r}; valid: {', '.join(POLICIES)}",
  )
  r = config.ohl.reward
  configs.check(r in REWARDS, f"ohl.reward={r!r}; valid: {', '.join(REWARDS)}")
  n = config.ohl.pairs_per_copy
  # More draws than the 1,296 pairs is what m = 0 (a pair per image) already covers.
  configs.check(
    0 <= n <= ohl_space.NUM_PAIRS,
    f"ohl.pairs_per_copy must be in [0, {ohl_space.NUM_PAIRS}] (0: a pair per image), got {n}",
  )


def pairs_from_draws(policy: reinforce.Categorical, draws: jax.Array) -> jax.Array:
  """Pair indices [...] of the policy's draws [..., F]: the joint draw itself, or the factorised
  policy's (first, second) operations as first * 36 + second (`ohl_space` numbering)."""
  if policy.num_factors == 1:
    return draws[..., 0]
  return draws[..., 0] * ohl_space.NUM_ELEMENTS + draws[..., 1]


def draws_from_pairs(policy: reinforce.Categorical, pairs: jax.Array) -> jax.Array:
  """The inverse of `pairs_from_draws`: [..., F] draws of the policy for pair indices [...]."""
  if policy.num_factors == 1:
    return pairs[..., None]
  return jnp.stack([pairs // ohl_space.NUM_ELEMENTS, pairs % ohl_space.NUM_ELEMENTS], axis=-1)


def make_augment_fn(policy: reinforce.Categorical):
  """The train step's augmentation hook for `policy` (see `augment_fn`)."""

  def augment(key, images, hparams, shared, aux):
    k_sample, k_apply = jax.random.split(key)
    if "pairs" in hparams:
      own = hparams["pairs"]
      pairs = own[jax.random.randint(k_sample, (images.shape[0],), 0, own.shape[0])]
    else:
      draws = policy.sample(k_sample, shared["logits"], (images.shape[0],))
      pairs = pairs_from_draws(policy, draws)
    images = ohl_space.apply_pair(k_apply, images, pairs)
    return images, {"counts": aux["counts"] + policy.stats(draws_from_pairs(policy, pairs))}

  augment.__doc__ = """Samples one pair per image from p_theta (or from the copy's own
  `hparams['pairs']`), applies it, counts what was used."""
  return augment


augment_fn = make_augment_fn(POLICY)  # the paper's joint policy


def pair_log_probs(policy: reinforce.Categorical, params: jax.Array) -> np.ndarray:
  """log p_theta of each of the 1,296 pairs, in `ohl_space` order."""
  logp = jax.nn.log_softmax(jnp.asarray(params, jnp.float32), axis=-1)
  if policy.num_factors == 1:
    return np.asarray(logp.reshape(-1))
  return np.asarray((logp[0][:, None] + logp[1][None, :]).reshape(-1))


class OHLController(Controller):
  """theta over the 1,296 pairs, learned by REINFORCE on the copies' val accuracy."""

  name = "ohl"

  def __init__(self, o: ml_collections.ConfigDict, num_copies: int):
    self.learn_theta, self.baseline = bool(o.learn_theta), o.baseline
    self.pairs_per_copy, self.num_copies = int(o.pairs_per_copy), num_copies
    self.policy, self.reward = POLICIES[o.policy], o.reward
    self.augment_fn = make_augment_fn(self.policy)
    self.optimizer = optax.adam(o.policy_lr, b1=o.policy_b1)
    self.aux_init = {"counts": self.policy.zero_stats()}

  def init(self, key):
    del key  # theta starts uniform
    return reinforce.init(self.policy, self.optimizer)

  def ask(self, state, key):
    hparams = {}  # per image: the pairs are sampled inside the train step
    if self.pairs_per_copy:
      draws = self.policy.sample(key, state.params, (self.num_copies, self.pairs_per_copy))
      hparams = {"pairs": np.asarray(pairs_from_draws(self.policy, draws))}
    return state, hparams, {"logits": np.asarray(state.params)}

  def tell(self, state, report: TrunkReport):
    info = {}
    if self.learn_theta:
      counts = jnp.asarray(report.aux["counts"])
      rewards = jnp.asarray(report.rewards_as(self.reward), jnp.float32)
      state, stats = reinforce.jit_update(
        self.policy, state, self.optimizer, counts, rewards, self.baseline
      )
      info = {f"policy_{k}": float(np.mean(v)) for k, v in stats.items()}
    info["theta_kl_from_uniform"] = float(self.policy.kl_from_uniform(state.params))
    return state, Broadcast(report.best()), info

  def history(self, state) -> dict:
    # log p_theta of the 1,296 pairs: the same plot and top pairs for either policy.
    return {"theta": pair_log_probs(self.policy, state.params).astype(np.float32)}

  def summary(self, state, history: dict, workdir) -> dict:
    names = ohl_space.pair_names()
    plots.plot_policy(history["theta"], names, workdir / "plots" / "theta.png")
    p = np.exp(pair_log_probs(self.policy, state.params))
    pairs = [{"pair": names[i], "index": int(i), "prob": float(p[i])} for i in np.argsort(-p)[:10]]
    write_json_atomic(workdir / "top_pairs.json", pairs)
    return {
      "learn_theta": self.learn_theta,
      "policy": "joint" if self.policy.num_factors == 1 else "factorised",
      "top_pairs": pairs,
      "theta_kl_from_uniform": float(self.policy.kl_from_uniform(state.params)),
    }


def run(config, workdir: str) -> dict:
  controller = OHLController(config.ohl, config.population.size)
  run = PopulationRun(config, workdir, controller, trunk="ohl")
  return run_trunks(run, controller, run.trunk_steps).summary
