"""AM-LFS: AutoML for Loss Function Search (Li et al., ICCV 2019), on the trunk loop.

The loss is the paper's family L = -log tau(p_y) (`jaxml/losses.py`; t is the identity on the
ordinary logits of these models). Its parameters theta ~ N(mu, sigma^2 I) (the paper's Gaussian;
sigma fixed unless `amlfs.learn_sigma`). In every trunk each of the K copies trains with its own
theta, drawn at the trunk start and passed to its train step as its per-copy hyper-parameters.
At the trunk end copy n's val accuracy R_n is its reward and mu takes one REINFORCE step (paper
Alg. 1: mu <- mu + eta 1/K sum_n (R_n - b) grad_mu log N(theta_n; mu, sigma^2), here through
Adam); the best copy's weights, BN statistics and optimizer state then go to every copy (as in
OHL). mu starts at 0, the identity: the search starts from cross-entropy (`amlfs.init_mu`
moves the start; with `learn_mu=False` it fixes a loss to compare a learned one against).

Not published (REFERENCES.md §2), chosen here: K = 8 copies, trunk = 1 epoch (the paper's loop
is described per epoch), sigma = 0.2, Adam lr 0.05 (b1 0.5) on mu, reward baseline = the mean
over copies, M = 5 intervals.
"""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxml import configs, losses
from jaxml.experiment import PopulationRun
from jaxml.metrics import plots
from jaxml.search import reinforce
from jaxml.trunks import REWARDS, Broadcast, Controller, TrunkReport, run_trunks

# `smoke`: CPU seconds; `baseline`: the same recipe with plain cross-entropy; `frozen`: mu stays
# at cross-entropy (random losses around it plus the best-copy broadcast, no learning).
VARIANTS = ("smoke", "baseline", "frozen")
MAX_INTERVALS = 100  # M; the paper does not publish it (REFERENCES.md), 5 by default


def amlfs_config(**overrides) -> ml_collections.ConfigDict:
  defaults = dict(
    trunk_epochs=1.0,  # T, in epochs of the train split (trunk_steps > 0 overrides it)
    trunk_steps=0,
    intervals=losses.DEFAULT_INTERVALS,  # M, pieces of tau on [0, 1]
    sigma=0.2,  # std of theta ~ N(mu, sigma^2 I)
    learn_sigma=False,  # the paper keeps sigma fixed
    learn_mu=True,  # False: mu stays at init_mu (ablation: is it the learning or the selection?)
    # Where mu starts: () = 0, cross-entropy (the paper); else one value per loss parameter
    # (intervals + 1). With learn_mu=False it fixes the centre of the draws, e.g. at the loss a
    # learned run ended with: does that loss help by itself, or only the path that found it?
    init_mu=(),
    policy_lr=0.05,  # Adam on mu
    policy_b1=0.5,
    baseline="mean",  # reward baseline: mean over copies | ema | none | rank
    reward="accuracy",  # val accuracy (paper) | neg_loss: -val cross-entropy (less noisy)
    # Antithetic pairs: copies 2i and 2i + 1 draw mu + sigma eps_i and mu - sigma eps_i, so the
    # pair's reward difference measures the loss's slope along eps_i with the shared part of
    # both rewards cancelled (Salimans et al., 2017, mirrored sampling).
    antithetic=False,
  )
  return ml_collections.ConfigDict({**defaults, **overrides})


def experiment(
  get_baseline, arg: str | None, name: str, label_noise: float | None = None
) -> ml_collections.ConfigDict:
  """AM-LFS on the recipe `get_baseline()`: same model, data and schedule, with symmetric
  `label_noise` on its train split when given (the same noisy labels for every variant).

  `baseline` is that recipe unchanged (cross-entropy); `smoke` shrinks both to a CPU-seconds run
  (ResNet-8 with 8 channels at 16x16 on a 10% subset, 60 steps), so `smoke` and
  `smoke,baseline` still share one schedule.
  """
  variants = configs.parse_variants(arg, VARIANTS, name=name, exclusive=[("baseline", "frozen")])
  c = get_baseline()
  if label_noise is not None:
    c.data.label_noise = label_noise
  if "smoke" in variants:
    configs.shrink_for_cpu(c, "cifar_resnet", depth=8, width=8)
    c.optim.update(lr=0.05, schedule="cosine", warmup_epochs=0.0)
    c.update(batch_size=32, num_steps=60, log_every_steps=10, eval_batch_size=500)
    c.data.val_size = 500
  if "baseline" in variants:
    return c
  c.method = "amlfs"
  c.amlfs = amlfs_config(learn_mu="frozen" not in variants)
  c.population.update(size=8, same_init=True, same_batch=True)
  if "smoke" in variants:
    c.population.mapping = "vmap"  # a short run is compile-bound: one copy's graph, not K
    c.amlfs.update(trunk_steps=10, policy_lr=0.1)
  return c


def validate_config(config) -> None:
  configs.validate_reinforce_controller(config, "amlfs")
  a = config.amlfs
  # Each interval is a search dimension for a handful of copies' REINFORCE samples.
  configs.check(
    1 <= a.intervals <= MAX_INTERVALS,
    f"amlfs.intervals must be in [1, {MAX_INTERVALS}], got {a.intervals}",
  )
  configs.check(a.sigma > 0, f"amlfs.sigma must be > 0, got {a.sigma}")
  num_params = losses.tau_function(int(a.intervals)).num_params
  configs.check(
    len(a.init_mu) in (0, num_params),
    f"amlfs.init_mu needs {num_params} values (intervals + 1) or none, got {len(a.init_mu)}",
  )
  configs.check(a.reward in REWARDS, f"amlfs.reward={a.reward!r}; valid: {', '.join(REWARDS)}")
  configs.check(
    config.optim.label_smoothing == 0.0,
    "amlfs searches the loss itself: optim.label_smoothing must be 0",
  )


class AMLFSController(Controller):
  """mu of N(mu, sigma^2 I) over the loss parameters, learned by REINFORCE on val rewards."""

  name = "amlfs"

  def __init__(self, a: ml_collections.ConfigDict, num_copies: int):
    self.tau = losses.tau_function(int(a.intervals))
    self.policy = reinforce.DiagonalGaussian(
      self.tau.num_params,
      learn_log_std=bool(a.learn_sigma),
      init_mean=tuple(a.init_mu) or 0.0,
      init_log_std=float(np.log(a.sigma)),
    )
    self.optimizer = optax.adam(a.policy_lr, b1=a.policy_b1)
    self.num_copies, self.baseline, self.reward = num_copies, a.baseline, a.reward
    self.learn_mu, self.antithetic = bool(a.learn_mu), bool(a.antithetic)

  def loss_fn(self, logits, labels, hparams, shared):
    del shared
    return losses.amlfs_loss(logits, labels, self.tau, hparams["loss"])

  def init(self, key):
    del key  # mu starts at init_mu: by default 0, the identity (cross-entropy)
    state = reinforce.init(self.policy, self.optimizer)
    return {"policy": state, "theta": jnp.zeros((self.num_copies, self.policy.dim), jnp.float32)}

  def ask(self, state, key):
    params = state["policy"].params
    if self.antithetic:  # mu + sigma eps and its mirror mu - sigma eps, pair by pair
      half = self.policy.sample(key, params, ((self.num_copies + 1) // 2,))
      pairs = jnp.stack([half, 2 * params["mean"] - half], axis=1)
      theta = pairs.reshape(-1, self.policy.dim)[: self.num_copies]
    else:
      theta = self.policy.sample(key, params, (self.num_copies,))
    return {**state, "theta": theta}, {"loss": np.asarray(theta)}, {}

  def tell(self, state, report: TrunkReport):
    if not self.learn_mu:
      return state, Broadcast(report.best()), {}
    rewards = jnp.asarray(report.rewards_as(self.reward), jnp.float32)
    stats = jax.vmap(self.policy.stats)(state["theta"])
    policy, stats = reinforce.jit_update(
      self.policy, state["policy"], self.optimizer, stats, rewards, self.baseline
    )
    info = {f"policy_{k}": float(np.mean(v)) for k, v in stats.items()}
    return {**state, "policy": policy}, Broadcast(report.best()), info

  def history(self, state) -> dict:
    params = state["policy"].params
    return {
      "mu": np.asarray(params["mean"]),
      "sigma": np.exp(np.asarray(params["log_std"])),
      "theta": np.asarray(state["theta"]),  # the K copies' draws of the trunk that ended
    }

  def summary(self, state, history: dict, workdir) -> dict:
    plots.plot_loss_functions(self.tau, history["mu"], workdir / "plots" / "loss_functions.png")
    mu = np.asarray(state["policy"].params["mean"])
    p = self.tau.knots()
    return {
      "mu": mu.tolist(),
      "sigma": np.exp(np.asarray(state["policy"].params["log_std"])).tolist(),
      "tau_at_knots": np.exp(np.asarray(losses.log_tau(self.tau, mu, jnp.log(p)))).tolist(),
      "knots": p.tolist(),
    }


def run(config, workdir: str) -> dict:
  controller = AMLFSController(config.amlfs, config.population.size)
  run = PopulationRun(config, workdir, controller, trunk="amlfs")
  trunk = run.trunk_steps
  return run_trunks(run, controller, trunk).summary
