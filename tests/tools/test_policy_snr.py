"""tools/policy_snr.py: the project's controllers follow a strong synthetic signal, and the
counts it hands OHL's factorised policy are the per-operation sums of the pair counts."""

import importlib.util
import pathlib

import numpy as np
import pytest

from jaxml.augment import ohl_space
from jaxml.methods import ohl

ROOT = pathlib.Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("policy_snr", ROOT / "tools/policy_snr.py")
policy_snr = importlib.util.module_from_spec(spec)
spec.loader.exec_module(policy_snr)


@pytest.mark.parametrize(
  "argv",
  [
    ["--method", "amlfs"],
    ["--method", "amlfs", "--baseline", "rank", "--antithetic"],
    ["--method", "ohl", "--policy", "factorised", "--draws", "500"],
  ],
)
def test_a_strong_signal_is_followed_and_noise_is_not(argv):
  args = policy_snr.parse_args([*argv, "--repeats", "6", "--updates", "8"])
  ctrl = policy_snr.controller(args)
  run = policy_snr.amlfs_repeat if args.method == "amlfs" else policy_snr.ohl_repeat
  strong = [run(ctrl, args, 8.0, 8, seed) for seed in range(6)]
  assert all(r["right_way"] for r in strong)
  if args.method == "amlfs":
    assert min(r["cos"] for r in strong) > 0.5
  # Without signal the same controller drifts either way.
  null = [run(ctrl, args, 0.0, 8, seed) for seed in range(6)]
  assert 0 < sum(r["right_way"] for r in null) < 6


def test_factorised_counts_are_the_operation_marginals():
  policy = ohl.POLICIES["factorised"]
  pair_counts = np.zeros(ohl_space.NUM_PAIRS)
  pair_counts[[0, 1, ohl_space.NUM_ELEMENTS]] = [2, 3, 5]  # pairs (0, 0), (0, 1), (1, 0)
  counts = policy_snr.policy_counts(policy, pair_counts)
  assert counts.shape == (2, ohl_space.NUM_ELEMENTS)
  assert counts[0, :2].tolist() == [5, 5] and counts[1, :2].tolist() == [7, 3]
  joint = policy_snr.policy_counts(ohl.POLICIES["joint"], pair_counts)
  assert joint.shape == (1, ohl_space.NUM_PAIRS) and joint.sum() == 10


def test_bad_arguments_are_refused():
  for argv in (["--copies", "1"], ["--snr", "-1"], ["--baseline", "median"]):
    with pytest.raises(SystemExit):
      policy_snr.parse_args(argv)
