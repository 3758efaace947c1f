"""EcoNAS proxies on the NB201 skeleton (`jaxml.proxy`): names, ladders, validation, cost."""

import numpy as np
import pytest

from jaxml import proxy
from jaxml.errors import ConfigError


def test_names_follow_the_paper_and_round_trip():
  p = proxy.Proxy.from_name("c4r4s0e60")
  # The official code's reliable proxy: /4 channels and resolution, all data, 60 epochs.
  assert (p.channels, p.resolution, p.sample_ratio, p.epochs, p.cells_per_stage) == (
    4, 8, 1.0, 60, 5
  )  # fmt: skip
  assert p.name == "c4r4s0e60"
  q = proxy.Proxy.from_name("c2r1s3e0.5n1")
  assert (q.channels, q.resolution, q.sample_ratio, q.epochs, q.cells_per_stage) == (
    8, 24, 0.125, 0.5, 1
  )  # fmt: skip
  assert proxy.Proxy.from_name(q.name) == q
  assert proxy.FULL.name == "c0r0s0e200"
  assert [p.name for p in proxy.parse("c4r4s0e60, c0r0s0e200")] == ["c4r4s0e60", "c0r0s0e200"]


@pytest.mark.parametrize(
  "name, match",
  [
    ("c5r0s0e10", "c index must be an integer in \\[0, 4\\]"),
    ("c0r0s4e10", "s index"),
    ("c0r0s0e0", "epochs must be in \\(0, 200\\]"),
    ("c0r0s0e300", "a reduction of the full"),
    ("c0r0s0e10n0", "cells per stage N"),
    ("c0r0s0e10n6", "cells per stage N"),
    ("r0c0s0e10", "bad proxy name"),
  ],
)
def test_impossible_proxies_get_one_config_error(name, match):
  with pytest.raises(ConfigError, match=match):
    proxy.Proxy.from_name(name)


def test_impossible_combinations_with_the_data():
  # 1/8 of 1,000 images is 125: not one batch of 256.
  with pytest.raises(ConfigError, match="fewer than one batch"):
    proxy.Proxy.from_name("c4r4s3e10").check_trainable(1000, 256)
  # 0.01 epochs of 175 steps rounds to no step.
  with pytest.raises(ConfigError, match="no training step"):
    proxy.Proxy.from_name("c4r4s0e0.001").check_trainable(45_000, 256)
  assert proxy.Proxy.from_name("c4r4s1e2").check_trainable(45_000, 250) == 2 * 90
  with pytest.raises(ConfigError, match="appears twice"):
    proxy.parse("c4r4s0e60,c4r4s0e60n5")
  with pytest.raises(ConfigError, match="empty"):
    proxy.parse(" , ")


def test_cost_is_flops_times_images_over_the_full_setting():
  encs = np.array([[3, 3, 3, 3, 3, 3], [1, 0, 2, 1, 4, 3]], np.int32)
  assert proxy.cost_fraction(proxy.FULL, encs, proxy.FULL_TRAIN_IMAGES) == pytest.approx(1.0)
  p = proxy.Proxy.from_name("c2r2s1e20n1")
  full = proxy.FULL.space()
  small = p.space()
  macs = np.mean(small.flops(encs)) / np.mean(full.flops(encs))
  expected = macs * (22_500 * 20) / (50_000 * 200)
  assert proxy.cost_fraction(p, encs, 45_000) == pytest.approx(expected)
  # Halving C and the resolution and going from 5 to 1 cell per stage: far below 1/16 of the MACs.
  assert macs < 1 / 16
