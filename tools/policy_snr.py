"""At which reward signal-to-noise ratio does a REINFORCE policy update learn, in how many trunks?

The OHL and AM-LFS studies (RESULTS.md) measure per trunk the spread of the copies' val rewards
against one val accuracy's standard error (`jaxml.trunks.reward_signal_noise`) and find them
equal: the learned policy then ties its frozen ablation. This tool answers the converse question
with the project's own controllers (`AMLFSController`, `OHLController`: their ask, tell,
optimizer, baseline and policy, unchanged) driven by synthetic trunk rewards

    R_n = snr * z_n + eps_n,      eps_n ~ N(0, 1),

where z_n is copy n's true quality, standardised over the K copies of the trunk (so `snr` is the
ratio of the reward spread that the copies' draws cause to the reward noise, the quantity a run
reports as signal / noise; a run's observed spread is sqrt(snr^2 + 1) noise units):

- AM-LFS: z_n ~ u . (theta_n - mu) / sigma for a fixed random unit direction u of the loss
  parameters (a reward linear in theta near mu). Progress after T updates is u . (mu_T - mu_0) /
  sigma, in sigmas along the good direction; `right way` is the share of repeats with progress
  > 0 (0.5 = chance), `cos` the cosine between mu_T - mu_0 and u, `successive cos` the mean
  cosine between successive updates' gradient estimates (`reinforce.direction_consistency`),
  which a real run's trunks.npz also gives (`tools/method_evidence.py`): it reads a run's
  signal / noise off this table.
- OHL: a random 5 % of the 1,296 pairs are good; z_n ~ the share of copy n's draws (its pair
  counts, drawn from p_theta exactly as the train step counts them: `--draws` per copy per trunk,
  5,000 = 1,000 images x 5 epochs in the CPU study; with `--pairs_per_copy m` the copy draws m
  pairs) that are good. Progress is the lift p_theta(good) / 5 % after T updates (1 = uniform),
  `right way` the share of repeats with lift > 1.

The expected reward gain of the learned policy over the frozen one is about snr x progress noise
units for AM-LFS (linear model), so "learned >= frozen + 1 point" at a reward noise of 1 point
needs snr x progress >= 1.

  python tools/policy_snr.py --method amlfs --snr 0,0.25,0.5,1,2 --updates 12,48 --repeats 100
  python tools/policy_snr.py --method amlfs --baseline rank --antithetic --copies 8
  python tools/policy_snr.py --method ohl --policy factorised --snr 0,1,4

Seconds to a few minutes on a CPU; no data, no training.
"""

import argparse
import pathlib
import sys

import jax
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from jaxml.augment import ohl_space  # noqa: E402
from jaxml.methods import amlfs, ohl  # noqa: E402
from jaxml.search import reinforce  # noqa: E402
from jaxml.trunks import TrunkReport  # noqa: E402

GOOD_SHARE = 0.05  # OHL: the share of the 1,296 pairs that help


def standardised(q: np.ndarray) -> np.ndarray:
  """q over copies shifted to mean 0 and scaled to std 1 (ddof 1); zeros if the copies tie."""
  sd = q.std(ddof=1)
  return (q - q.mean()) / sd if sd > 0 else np.zeros_like(q)


def report(trunk: int, rewards: np.ndarray, counts=None) -> TrunkReport:
  k = rewards.shape[0]
  val = {"accuracy": rewards, "loss": -rewards}
  aux = {} if counts is None else {"counts": counts}
  return TrunkReport(trunk, rewards, np.ones(k, bool), val, aux)


def controller(args):
  """The method's controller with the run's options (stateless: one serves every repeat, so
  its policy update compiles once)."""
  if args.method == "amlfs":
    a = amlfs.amlfs_config(baseline=args.baseline, antithetic=args.antithetic)
    return amlfs.AMLFSController(a, args.copies)
  o = ohl.ohl_config(baseline=args.baseline, policy=args.policy)
  return ohl.OHLController(o, args.copies)


def amlfs_repeat(ctrl, args, snr: float, updates: int, seed: int) -> dict:
  """One simulated AM-LFS run: mu's progress along the good direction after `updates` trunks."""
  sigma = float(np.exp(ctrl.policy.init_params()["log_std"]).mean())
  rng = np.random.default_rng(seed)
  u = rng.standard_normal(ctrl.policy.dim)
  u /= np.linalg.norm(u)
  key = jax.random.key(seed)
  state = ctrl.init(jax.random.fold_in(key, 0))
  mu0 = np.asarray(state["policy"].params["mean"], np.float64)
  draws, means, all_rewards = [], [], []
  for t in range(updates):
    mu = np.asarray(state["policy"].params["mean"], np.float64)
    state, hparams, _ = ctrl.ask(state, jax.random.fold_in(key, t + 1))
    theta = np.asarray(hparams["loss"], np.float64)
    rewards = snr * standardised((theta - mu) @ u / sigma) + rng.standard_normal(args.copies)
    state, _, _ = ctrl.tell(state, report(t, rewards))
    draws.append(theta), means.append(mu), all_rewards.append(rewards)
  move = np.asarray(state["policy"].params["mean"], np.float64) - mu0
  progress = float(move @ u / sigma)
  cos = float(move @ u / max(np.linalg.norm(move), 1e-12))
  steady = reinforce.direction_consistency(draws, means, all_rewards)
  return {"progress": progress, "right_way": progress > 0, "cos": cos, "steady": steady}


def ohl_repeat(ctrl, args, snr: float, updates: int, seed: int) -> dict:
  """One simulated OHL run: the lift of p_theta on the good pairs after `updates` trunks."""
  rng = np.random.default_rng(seed)
  good = np.zeros(ohl_space.NUM_PAIRS, bool)
  good[rng.choice(ohl_space.NUM_PAIRS, round(GOOD_SHARE * ohl_space.NUM_PAIRS), replace=False)] = 1
  state = ctrl.init(jax.random.key(seed))
  for t in range(updates):
    p = np.exp(ohl.pair_log_probs(ctrl.policy, state.params).astype(np.float64))
    p /= p.sum()
    if args.pairs_per_copy:  # m pairs per copy, each used for draws / m of its images
      own = rng.multinomial(args.pairs_per_copy, p, size=args.copies)
      pair_counts = own * (args.draws / args.pairs_per_copy)
    else:  # a pair per image from p_theta: the counts are multinomial
      pair_counts = rng.multinomial(args.draws, p, size=args.copies).astype(np.float64)
    z = standardised(pair_counts[:, good].sum(1) / pair_counts.sum(1))
    rewards = snr * z + rng.standard_normal(args.copies)
    counts = np.stack([policy_counts(ctrl.policy, c) for c in pair_counts])
    state, _, _ = ctrl.tell(state, report(t, rewards, counts))
  p = np.exp(ohl.pair_log_probs(ctrl.policy, state.params).astype(np.float64))
  lift = float(p[good].sum() / p.sum() / good.mean())
  return {"progress": lift, "right_way": lift > 1, "cos": float("nan"), "steady": float("nan")}


def policy_counts(policy, pair_counts: np.ndarray) -> np.ndarray:
  """A copy's counts as its policy's stats [F, C] from its per-pair counts [1,296]."""
  if policy.num_factors == 1:
    return pair_counts[None, :].astype(np.float32)
  grid = pair_counts.reshape(ohl_space.NUM_ELEMENTS, ohl_space.NUM_ELEMENTS)
  return np.stack([grid.sum(1), grid.sum(0)]).astype(np.float32)  # first op, second op


def table(args) -> str:
  run_one = amlfs_repeat if args.method == "amlfs" else ohl_repeat
  ctrl = controller(args)
  what = "mu along u (sigmas)" if args.method == "amlfs" else "lift on good pairs"
  lines = [
    f"| snr | updates | {what}: mean ± std | right way | cos(move, u) | successive cos |",
    "| --- | --- | --- | --- | --- | --- |",
  ]
  for updates in args.updates:
    for snr in args.snr:
      rows = [run_one(ctrl, args, snr, updates, 1000 * r + updates) for r in range(args.repeats)]
      prog = np.array([r["progress"] for r in rows])
      right = np.mean([r["right_way"] for r in rows])
      cos, steady = (np.mean([r[k] for r in rows]) for k in ("cos", "steady"))
      cos_s, steady_s = ("" if np.isnan(v) else f"{v:.2f}" for v in (cos, steady))
      lines.append(
        f"| {snr:g} | {updates} | {prog.mean():.3f} ± {prog.std():.3f} | {right:.2f} | {cos_s} "
        f"| {steady_s} |"
      )
      print(lines[-1], flush=True)
  return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--method", choices=("amlfs", "ohl"), default="amlfs")
  p.add_argument("--snr", default="0,0.25,0.5,1,2", help="signal / noise ratios, comma-separated")
  p.add_argument("--updates", default="12,48", help="policy updates (trunks) per run")
  p.add_argument("--repeats", type=int, default=100, help="simulated runs per cell")
  p.add_argument("--copies", type=int, default=4, help="K")
  p.add_argument("--baseline", default="mean", choices=reinforce.BASELINES)
  p.add_argument("--antithetic", action="store_true", help="AM-LFS mirrored draws")
  p.add_argument("--policy", default="joint", choices=sorted(ohl.POLICIES), help="OHL")
  p.add_argument("--draws", type=int, default=5000, help="OHL: pairs a copy uses per trunk")
  p.add_argument("--pairs_per_copy", type=int, default=0, help="OHL: m pairs per copy (0: off)")
  p.add_argument("--out", default="", help="write the table here too")
  args = p.parse_args(argv)
  args.snr = [float(s) for s in args.snr.split(",") if s.strip()]
  args.updates = [int(s) for s in args.updates.split(",") if s.strip()]
  if args.repeats < 2 or args.copies < 2 or min(args.updates) < 1 or min(args.snr) < 0:
    p.error("need --repeats >= 2, --copies >= 2, --updates >= 1 and --snr >= 0")
  return args


def main(argv=None) -> None:
  args = parse_args(argv)
  text = table(args)
  if args.out:
    pathlib.Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
  main()
