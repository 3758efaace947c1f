"""tools/method_evidence.py: the run commands it would launch and the table it prints."""

import importlib.util
import json
import pathlib

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("method_evidence", ROOT / "tools/method_evidence.py")
evidence = importlib.util.module_from_spec(spec)
spec.loader.exec_module(evidence)


def test_commands_name_the_variant_seed_and_noise(tmp_path):
  wd = evidence.workdir(tmp_path, "amlfs", "frozen", 2, 0.4)
  assert wd.name == "amlfs_frozen_n40_s2"
  cmd = evidence.command("amlfs", "frozen", 2, 0.4, wd)
  assert "--config=experiments/amlfs/cifar10_cpu_study.py:frozen" in cmd
  assert {"--config.seed=2", "--config.data.label_noise=0.4"} <= set(cmd)
  cmd = evidence.command("ohl", "percopy", 0, None, tmp_path / "ohl_percopy_s0")
  assert "--config=experiments/ohl/cifar10_cpu_study.py" in cmd
  assert "--config.ohl.pairs_per_copy=1" in cmd and not any("label_noise" in c for c in cmd)
  for study, (config, _) in evidence.STUDIES.items():
    assert (ROOT / config).exists(), study


def test_table_means_over_finished_seeds(tmp_path, capsys):
  for seed, acc in [(0, 0.30), (1, 0.40)]:
    wd = evidence.workdir(tmp_path, "amlfs", "amlfs", seed, 0.4)
    wd.mkdir()
    summary = {"test_accuracy": acc, "val_accuracy": acc, "wall_time_s": 10.0}
    summary.update(rewards=[[0.3, 0.5], [0.4, 0.4]], tau_at_knots=[0.25, 1.0])
    (wd / "summary.json").write_text(json.dumps(summary))
    (wd / "config.json").write_text(json.dumps({"data": {"val_size": 100}}))
    (wd / "trunks.npz").write_bytes(b"")
    rows = [
      {"step": 1, "val_accuracy": 0.2, "val_accuracy_best": acc + 0.1, "acc_snr": 0.5 + seed},
      {"step": 2, "acc_snr": 1.5 + seed, "acc_noise": 0.01, "loss_snr": None},
    ]
    (wd / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  evidence.main(["--study", "amlfs", "--noise", "0.4", "--root", str(tmp_path), "--table_only"])
  out = capsys.readouterr().out
  assert "| 0.4 | amlfs | 0.3500 ± 0.0500 (n=2) | 0.3000, 0.4000 | 0.3500 | 0.4500 | 10 |" in out
  assert "baseline" not in out  # no finished run, no row
  # means over the trunks that measured them (acc_snr 1.5, 2.5 for seed 1); nan where none did
  assert "| 0.4 | amlfs | 1 | nan | nan | 0.0100 | 2.0000 | nan | nan | tau(0) 0.250 |" in out
  with pytest.raises(SystemExit):
    evidence.main(["--study", "amlfs", "--variants", "nosuch", "--table_only"])


def test_across_seeds_compares_the_final_policies(tmp_path):
  def ohl_run(seed, log_p, kl):
    wd = evidence.workdir(tmp_path, "ohl", "short", seed, None)
    wd.mkdir()
    top = [{"pair": f"p{i}|q", "index": int(i), "prob": 0.0} for i in np.argsort(-log_p)[:10]]
    summary = {"test_accuracy": 0.4, "theta_kl_from_uniform": kl, "top_pairs": top}
    (wd / "summary.json").write_text(json.dumps(summary))
    np.savez(wd / "trunks.npz", theta=np.stack([np.zeros_like(log_p), log_p]))

  base = np.zeros(1296)
  base[:10] = np.arange(10, 0, -1)  # pairs 0-9 on top, in this order
  ohl_run(0, base, 0.1)
  ohl_run(1, base * 2, 0.3)  # the same direction, further
  shifted = np.roll(base, 5)  # pairs 5-14 on top: 5 shared with the others
  ohl_run(2, shifted, 0.2)
  out = evidence.across_seeds(tmp_path, "ohl", ["short", "frozen"], [0, 1, 2], [None])
  row = [line for line in out.splitlines() if "| short |" in line]
  assert len(row) == 1 and "frozen" not in out  # no finished frozen runs, no row
  cells = [c.strip() for c in row[0].split("|")[1:-1]]
  assert cells[:4] == ["0", "short", "3", "KL 0.2000"]
  centred = [v - v.mean() for v in (base, shifted)]  # log p relative to uniform
  cos = centred[0] @ centred[1] / (centred[0] @ centred[0])
  assert float(cells[4]) == pytest.approx((1 + 2 * cos) / 3, abs=0.006)
  assert float(cells[5]) == pytest.approx((10 + 5 + 5) / 3, abs=0.006)
  assert cells[6].startswith("p5 + q (3/3)")  # in all three top-10s, the lowest index first


def test_across_seeds_finds_the_direction_the_reward_pulls_mu(tmp_path):
  rng = np.random.default_rng(0)
  for seed in range(3):  # frozen runs: mu stays 0, the rewards favour a larger first parameter
    wd = evidence.workdir(tmp_path, "amlfs", "frozen", seed, 0.4)
    wd.mkdir()
    theta = rng.normal(0.0, 0.2, (20, 4, 6))
    rewards = 0.3 + 0.1 * theta[:, :, 0] + rng.normal(0.0, 0.001, (20, 4))
    np.savez(wd / "trunks.npz", mu=np.zeros((20, 6)), theta=theta, rewards=rewards)
    summary = {"test_accuracy": 0.3, "mu": [0.0] * 6, "tau_at_knots": [0.0, 1.0]}
    (wd / "summary.json").write_text(json.dumps(summary))
  out = evidence.across_seeds(tmp_path, "amlfs", ["frozen"], [0, 1, 2], [0.4])
  cells = [c.strip() for c in out.splitlines()[-1].split("|")[1:-1]]
  assert cells[:5] == ["0.4", "frozen", "3", "‖mu‖ 0.000", "nan"]  # mu never moved
  assert float(cells[5]) > 0.9  # every seed's reward pulls the same way ...
  direction = [float(v) for v in cells[6].split()]
  assert direction[0] > 0.9 and max(abs(v) for v in direction[1:]) < 0.3  # ... along theta[0]
  phases = cells[7].split()  # "+m (n)" for each fifth of the 20 trunks: all 3 seeds pull up
  assert len(phases) == 10 and phases[1::2] == ["(3)"] * 5 and float(phases[0]) > 0
  assert cells[8] == " ".join(["+0.00"] * 5)  # mu's tau offset at the end of each fifth
