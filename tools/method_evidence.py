"""Seeds x variants of a method against its baseline on one schedule, and the table for RESULTS.md.

Runs (or, with --table_only, only tabulates) `python -m jaxml.main` for every seed and variant of
a study, one run per workdir `ROOT/<study>_<variant>[_n<noise%>]_s<seed>`; finished runs (a
summary.json) are skipped, killed ones resume. Then prints a markdown table of test accuracy
(mean ± std over seeds, ddof 0, and per seed), final and peak val accuracy and wall time, a table
of controller diagnostics (`diagnostics`: is the reward signal above its noise?) and one of the
policies across seeds (`across_seeds`: do the seeds learn the same thing?).

  python tools/method_evidence.py --study ohl --root runs/evidence --seeds 0,1,2
  python tools/method_evidence.py --study amlfs --noise 0.4,0.2 --root runs/evidence
  python tools/method_evidence.py --study amlfs --noise 0.4 --root runs/evidence --table_only
"""

import argparse
import json
import pathlib
import subprocess
import sys

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from jaxml.search.reinforce import direction_consistency, gradient_estimates  # noqa: E402

# study -> (experiment file, {variant: extra command-line arguments})
STUDIES = {
  "ohl": (
    "experiments/ohl/cifar10_cpu_study.py",
    {
      "baseline": [":baseline"],
      "ohl": [""],
      "frozen": [":frozen"],
      "percopy": ["", "--config.ohl.pairs_per_copy=1"],
      "factorised": ["", "--config.ohl.policy=factorised"],
      "negloss": ["", "--config.ohl.reward=neg_loss"],
      "short": ["", "--config.ohl.trunk_epochs=1"],
      "frozen_short": [":frozen", "--config.ohl.trunk_epochs=1"],
    },
  ),
  "amlfs": (
    "experiments/amlfs/cifar10_cpu_study.py",
    {
      "baseline": [":baseline"],
      "amlfs": [""],
      "frozen": [":frozen"],
      # K cross-entropy copies with the best-copy broadcast: the selection alone
      "select": [":frozen", "--config.amlfs.sigma=1e-6"],
      # issue 28's lower-variance rewards and updates, one change each
      "negloss": ["", "--config.amlfs.reward=neg_loss"],
      "rank": ["", "--config.amlfs.baseline=rank"],
      "antithetic": ["", "--config.amlfs.antithetic=True"],
      "val5k": ["", "--config.data.val_size=5000"],
      "k8": ["", "--config.population.size=8"],
      "short": ["", "--config.amlfs.trunk_epochs=1"],  # 60 policy updates instead of 12
      # the ablation of `short` on its own schedule: 60 best-copy broadcasts, mu never moves
      "frozen_short": [":frozen", "--config.amlfs.trunk_epochs=1"],
      # `frozen_short` with the draws centred on the mean mu that `short` learned at 40 % noise
      # (5 seeds): does that loss help by itself at this noise rate, or only its search?
      "frozen_learned": [
        ":frozen",
        "--config.amlfs.trunk_epochs=1",
        "--config.amlfs.init_mu=(0.86,0.09,0.07,-0.2,0.06,-0.08)",
      ],
    },
  ),
}


def workdir(root: pathlib.Path, study: str, variant: str, seed: int, noise: float | None):
  tag = "" if noise is None else f"_n{round(noise * 100)}"
  return root / f"{study}_{variant}{tag}_s{seed}"


def command(study: str, variant: str, seed: int, noise: float | None, wd: pathlib.Path) -> list:
  config, variants = STUDIES[study]
  suffix, *extra = variants[variant]
  cmd = [sys.executable, "-m", "jaxml.main", f"--config={config}{suffix}", f"--workdir={wd}"]
  cmd += [f"--config.seed={seed}", "--config.progress=False", *extra]
  if noise is not None:
    cmd.append(f"--config.data.label_noise={noise}")
  return cmd


def peak_val(metrics_path: pathlib.Path) -> float:
  """The best val accuracy any evaluation of the run saw (its best copy's, for populations): what
  early stopping on val could have kept. NaN without a metrics log."""
  if not metrics_path.exists():
    return float("nan")
  rows = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
  vals = [r.get("val_accuracy_best", r.get("val_accuracy")) for r in rows]
  return max((v for v in vals if v is not None), default=float("nan"))


def table(root, study, variants, seeds, noises) -> str:
  lines = [
    "| noise | variant | test acc (mean ± std) | per seed | val acc (mean) | peak val (mean) "
    "| wall s (mean) |",
    "| --- | --- | --- | --- | --- | --- | --- |",
  ]
  for noise in noises:
    for variant in variants:
      rows, peaks = [], []
      for seed in seeds:
        wd = workdir(root, study, variant, seed, noise)
        if (wd / "summary.json").exists():
          rows.append(json.loads((wd / "summary.json").read_text()))
          peaks.append(peak_val(wd / "metrics.jsonl"))
      if not rows:
        continue
      test = np.array([r["test_accuracy"] for r in rows])
      val = np.mean([r["val_accuracy"] for r in rows])
      wall = np.mean([r["wall_time_s"] for r in rows])
      per_seed = ", ".join(f"{t:.4f}" for t in test)
      noise_s = "0" if noise is None else f"{noise:g}"
      lines.append(
        f"| {noise_s} | {variant} | {test.mean():.4f} ± {test.std():.4f} (n={len(test)}) | "
        f"{per_seed} | {val:.4f} | {np.mean(peaks):.4f} | {wall:.0f} |"
      )
  return "\n".join(lines)


def mean_over_trunks(metrics_path: pathlib.Path, key: str) -> float:
  """The mean of `key` over the trunk rows of metrics.jsonl (NaN where no row has it)."""
  if not metrics_path.exists():
    return float("nan")
  rows = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
  vals = [r[key] for r in rows if r.get(key) is not None]
  return float(np.mean(vals)) if vals else float("nan")


def amlfs_draws(path: pathlib.Path):
  """(draws theta [T, K, D], the mu each trunk drew around [T, D], rewards [T, K]) from an AM-LFS
  run's trunks.npz: trunk t's draws were made around the mu of trunk t - 1 (0 before the first).
  None when not recorded."""
  try:
    with np.load(path) as f:
      mu, theta, rewards = f["mu"], f["theta"], f["rewards"]
  except (OSError, ValueError, KeyError, EOFError):
    return None
  return theta, np.concatenate([np.zeros_like(mu[:1]), mu[:-1]]), rewards


def diagnostics(root, study, variants, seeds, noises) -> str:
  """Is the reward informative? Per run with copies, means over its trunks of the split-half
  measures (`jaxml.trunks.reward_signal_noise`): the copies' val accuracy spread, the part of it
  that is the copies' quality (signal) and the val sampling noise of one copy's accuracy, their
  ratio, and the same ratio for the val loss; for AM-LFS the mean cosine between successive mu
  updates (`reinforce.direction_consistency`: ~0 when the updates follow noise); and where the
  policy ended (OHL: KL(p_theta || uniform); AM-LFS: tau(0), the loss bound at p = 0: 0 is
  cross-entropy's unbounded loss)."""
  lines = [
    "| noise | variant | seed | acc spread | acc signal | acc noise | signal/noise acc | "
    "signal/noise loss | successive cos | policy at the end |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ]
  keys = ("acc_spread", "acc_signal", "acc_noise", "acc_snr", "loss_snr")
  for noise in noises:
    for variant in variants:
      for seed in seeds:
        wd = workdir(root, study, variant, seed, noise)
        if not (wd / "summary.json").exists() or not (wd / "trunks.npz").exists():
          continue
        summary = json.loads((wd / "summary.json").read_text())
        steady = float("nan")
        if "theta_kl_from_uniform" in summary:
          policy = f"KL {summary['theta_kl_from_uniform']:.4f}"
        else:
          policy = f"tau(0) {summary['tau_at_knots'][0]:.3f}"
          draws = amlfs_draws(wd / "trunks.npz")
          steady = float("nan") if draws is None else direction_consistency(*draws)
        noise_s = "0" if noise is None else f"{noise:g}"
        cells = " | ".join(f"{mean_over_trunks(wd / 'metrics.jsonl', k):.4f}" for k in keys)
        lines.append(f"| {noise_s} | {variant} | {seed} | {cells} | {steady:.2f} | {policy} |")
  return "\n".join(lines)


def final_policy(wd: pathlib.Path):
  """(displacement, top-10 pair indices or None) of a finished run's policy: AM-LFS's final mu
  (it starts at 0, cross-entropy); OHL's final log p_theta over the 1,296 pairs, centred (0 is
  uniform, where theta starts), and its 10 most likely pairs. None when not recorded."""
  summary = json.loads((wd / "summary.json").read_text())
  if "mu" in summary:
    return np.asarray(summary["mu"], np.float64), None
  try:
    with np.load(wd / "trunks.npz") as f:
      log_p = np.asarray(f["theta"][-1], np.float64)
  except (OSError, ValueError, KeyError, EOFError, IndexError):
    return None, None
  return log_p - log_p.mean(), [p["index"] for p in summary.get("top_pairs", [])]


def mean_pairwise_cosine(vectors) -> float:
  """The mean cosine over all pairs of the vectors (NaN for a pair with a zero vector)."""
  cosines = []
  for i in range(len(vectors)):
    for j in range(i + 1, len(vectors)):
      norm = np.linalg.norm(vectors[i]) * np.linalg.norm(vectors[j])
      cosines.append(float(vectors[i] @ vectors[j] / norm) if norm > 0 else float("nan"))
  return float(np.mean(cosines)) if cosines else float("nan")


def common_top_pairs(summaries: list, top: list) -> str:
  """OHL: the three pairs in most seeds' top 10, with in how many (ties: lowest index first)."""
  names = {p["index"]: p["pair"] for s in summaries for p in s.get("top_pairs", [])}
  counts = {}
  for indices in top:
    for index in indices:
      counts[index] = counts.get(index, 0) + 1
  common = sorted(counts, key=lambda k: (-counts[k], k))[:3]
  # a pair's name is "op1|op2": a markdown table cell cannot hold the bar
  return ", ".join(f"{names[k].replace('|', ' + ')} ({counts[k]}/{len(top)})" for k in common)


def across_seeds(root, study, variants, seeds, noises) -> str:
  """Does the policy learn the same thing in every seed? Per variant: how far the policy moved
  (AM-LFS: the norm of mu; OHL: KL(p_theta || uniform)); the mean cosine between two seeds'
  final policy displacements over all pairs of seeds (~0 when each seed follows its own noise;
  NaN when the policy never moved); for AM-LFS the same cosine between the seeds' mean REINFORCE
  gradient estimates (`reinforce.gradient_estimates`, the way the reward pulls mu, measured in
  frozen runs too: near 1 when every seed's reward points the same way) and that mean direction
  over seeds (unit norm; its first entry is the tau offset, > 0 toward a loss bounded at p = 0)
  and that entry's mean estimate in each fifth of the run, with the number of seeds where > 0,
  and where mu's tau offset was at the end of each fifth (how soon the learned loss arrived);
  for OHL how many of the 10 most likely pairs two seeds share (10 x 10 / 1,296 = 0.08 by
  chance) and the pairs in the top 10 of most seeds (the paper's Fig. 4 question: which
  augmentations does the learned policy prefer?)."""
  extra = (
    [
      "reward direction cosine between seeds",
      "reward direction (mean, unit)",
      "tau-offset pull by fifth of the run (x1e3; seeds > 0)",
      "tau offset mu[0] at the end of each fifth (mean)",
    ]
    if study == "amlfs"
    else ["shared top-10 pairs", "most common top pairs"]
  )
  head = ["noise", "variant", "seeds", "policy moved (mean)", "policy cosine between seeds", *extra]
  lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
  for noise in noises:
    for variant in variants:
      finished = [workdir(root, study, variant, s, noise) for s in seeds]
      finished = [wd for wd in finished if (wd / "summary.json").exists()]
      runs = [(json.loads((wd / "summary.json").read_text()), wd) for wd in finished]
      policies = [(summary, *final_policy(wd)) for summary, wd in runs]
      policies = [p for p in policies if p[1] is not None]
      if len(policies) < 2:
        continue
      summaries, moves, top = zip(*policies)
      cosine = mean_pairwise_cosine(moves)
      row = [f"{cosine:.2f}"]
      if study == "amlfs":
        moved = f"‖mu‖ {np.mean([np.linalg.norm(m) for m in moves]):.3f}"
        draws = [amlfs_draws(wd / "trunks.npz") for _, wd in runs]
        pulls = [gradient_estimates(*d).mean(0) for d in draws if d is not None]
        mean_pull = np.mean([p / np.linalg.norm(p) for p in pulls], axis=0)
        mean_pull /= np.linalg.norm(mean_pull)
        row += [f"{mean_pairwise_cosine(pulls):.2f}", " ".join(f"{v:+.2f}" for v in mean_pull)]
        # Does the reward pull the same way all run long? The tau offset's component of the
        # estimates, averaged over each fifth of the trunks.
        phases = np.array(
          [
            [g.mean() for g in np.array_split(gradient_estimates(*d)[:, 0], 5)]
            for d in draws
            if d is not None
          ]
        )
        row.append(
          " ".join(f"{m * 1e3:+.2f} ({n})" for m, n in zip(phases.mean(0), (phases > 0).sum(0)))
        )
        # ... and when mu got there: mu after each trunk is the centre of the next trunk's draws
        ends = [
          [m[-1, 0] for m in np.array_split(np.vstack([d[1][1:], mu]), 5)]
          for d, mu in zip(draws, moves)
          if d is not None
        ]
        row.append(" ".join(f"{v:+.2f}" for v in np.mean(ends, 0)))
      else:
        moved = f"KL {np.mean([s['theta_kl_from_uniform'] for s in summaries]):.4f}"
        if np.isnan(cosine):  # uniform all along: its "top pairs" are ties
          row += ["", ""]
        else:
          shared = [len(set(a) & set(b)) for i, a in enumerate(top) for b in top[i + 1 :]]
          row += [f"{np.mean(shared):.2f}", common_top_pairs(summaries, top)]
      noise_s = "0" if noise is None else f"{noise:g}"
      lines.append(
        f"| {noise_s} | {variant} | {len(policies)} | {moved} | " + " | ".join(row) + " |"
      )
  return "\n".join(lines)


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--study", choices=sorted(STUDIES), required=True)
  parser.add_argument("--root", default="runs/evidence", help="parent of the run workdirs")
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--variants", default=None, help="comma-separated; default: all")
  parser.add_argument("--noise", default=None, help="label-noise rates (amlfs), e.g. 0.4,0.2")
  parser.add_argument("--table_only", action="store_true", help="tabulate finished runs only")
  args = parser.parse_args(argv)
  all_variants = STUDIES[args.study][1]
  variants = args.variants.split(",") if args.variants else list(all_variants)
  unknown = sorted(set(variants) - set(all_variants))
  if unknown:
    parser.error(f"unknown variants {unknown} for {args.study}; valid: {list(all_variants)}")
  seeds = [int(s) for s in args.seeds.split(",")]
  noises = [float(n) for n in args.noise.split(",")] if args.noise else [None]
  root = pathlib.Path(args.root)
  if not args.table_only:
    for noise in noises:
      for seed in seeds:
        for variant in variants:
          wd = workdir(root, args.study, variant, seed, noise)
          if (wd / "summary.json").exists():
            continue
          print(" ".join(command(args.study, variant, seed, noise, wd)), flush=True)
          subprocess.run(command(args.study, variant, seed, noise, wd), cwd=REPO, check=True)
  print(table(root, args.study, variants, seeds, noises))
  print()
  print(diagnostics(root, args.study, variants, seeds, noises))
  print()
  print(across_seeds(root, args.study, variants, seeds, noises))


if __name__ == "__main__":
  main()
