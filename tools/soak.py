"""Soak test of resume: SIGKILL a run at random moments N times, optionally corrupt its newest
checkpoint between kills, finish it, and compare with an uninterrupted run.

  python tools/soak.py --method train --kills 20 --root /tmp/soak_train
  python tools/soak.py --method ohl --kills 20 --corrupt --root /tmp/soak_ohl_corrupt

Each `--method` runs its experiment's `:smoke` config through `python -m jaxml.main` in a child
process, with checkpoints every `--checkpoint_every` steps so that a kill loses little. First the
reference: the same command, uninterrupted. Then the soak: start, SIGKILL (the process gets no
chance to save), and again, `--kills` times; then run to the end. Kill points are random steps
spread over the run (the child is killed 0-1 s after metrics.jsonl shows the step, so kills land
while stepping, logging and saving), and a fifth of the kills land 0-10 s after a start instead
(imports, data, compile).

`--corrupt`: after a kill that landed, the newest checkpoint (when an older one exists to fall
back to, and once the last corruption has been reported) is damaged in turn by a flipped
byte in its largest array file, a truncation of that file, its deletion, or a broken metadata
JSON. The next start must say so (jaxml's "Skipping corrupt" warning, checked) and resume from
the previous good step.

Expected, and checked: the soaked run's summary.json equals the reference's (timings aside) and
its final checkpoint's array checksums (sha256 of every array, `jaxml.checkpoint`) equal the
reference's, i.e. the final state is bit-identical; every corruption was reported. Exit 0 when
all hold, 1 otherwise; a JSON report goes to `<root>/soak.json`. Not run in CI (minutes).
"""

import argparse
import json
import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = {
  "train": "experiments/baselines/cifar10_resnet20.py:smoke",
  "ohl": "experiments/ohl/cifar10_resnet18.py:smoke",
  "amlfs": "experiments/amlfs/cifar10_noise20.py:smoke",
}
TIMING_KEYS = ("wall_time_s", "train_time_s", "images_per_s")
CORRUPTIONS = ("flip", "truncate", "delete", "metadata")
CORRUPT_WARNING = "Skipping corrupt"


def command(args, workdir: pathlib.Path) -> list[str]:
  cmd = [sys.executable, "-m", "jaxml.main", "--config", CONFIGS[args.method]]
  cmd += ["--workdir", str(workdir), "--config.progress=False"]
  cmd += [f"--config.checkpoint_every_steps={args.checkpoint_every}", "--config.log_every_steps=1"]
  # Opt-level-0 XLA:CPU compiles (3-4x cheaper): every restart compiles again.
  cmd += ["--config.population.fast_compile=True"]
  if args.data_dir:
    cmd += [f"--config.data.dir={args.data_dir}"]
  return cmd


def run_to_end(args, workdir: pathlib.Path) -> tuple[float, str]:
  """(wall s, stderr) of one uninterrupted run (resuming whatever `workdir` holds)."""
  t0 = time.perf_counter()
  proc = subprocess.run(command(args, workdir), cwd=ROOT, capture_output=True, text=True)
  if proc.returncode != 0:
    sys.exit(f"soak: {workdir} failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
  return time.perf_counter() - t0, proc.stderr


def logged_step(workdir: pathlib.Path) -> int:
  """The last training step in metrics.jsonl (0 before any): how far the run has got."""
  path = workdir / "metrics.jsonl"
  if not path.is_file():
    return 0
  steps = [0]
  for line in path.read_text().splitlines():
    try:
      steps.append(int(json.loads(line).get("step", 0)))
    except (ValueError, AttributeError):  # a line torn by an earlier kill
      continue
  return max(steps)


def start_and_kill(args, workdir: pathlib.Path, target_step: int | None, extra_s: float):
  """Starts the run and SIGKILLs it `extra_s` after it logs `target_step` (None: `extra_s` after
  the start, i.e. during start-up); returns (whether the kill landed mid-run, stderr)."""
  with open(workdir.parent / "attempt.err", "w+") as err:
    proc = subprocess.Popen(command(args, workdir), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
    while target_step is not None and proc.poll() is None and logged_step(workdir) < target_step:
      time.sleep(0.05)
    try:
      proc.wait(timeout=extra_s)
      landed = False  # it finished first
    except subprocess.TimeoutExpired:
      proc.send_signal(signal.SIGKILL)
      proc.wait()
      landed = True
    err.seek(0)
    text = err.read()
  if not landed and proc.returncode != 0:
    sys.exit(f"soak: {workdir} failed (exit {proc.returncode}): {text.strip()[-500:]}")
  return landed, text


def saved_steps(workdir: pathlib.Path) -> list[pathlib.Path]:
  ckpts = workdir / "checkpoints"
  if not ckpts.is_dir():
    return []
  return sorted((p for p in ckpts.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


def newest_step(workdir: pathlib.Path) -> pathlib.Path | None:
  steps = saved_steps(workdir)
  return steps[-1] if steps else None


def corrupt(step_dir: pathlib.Path, kind: str) -> str:
  """Damages one checkpoint step in place; returns what was done."""
  if kind == "metadata":
    path = step_dir / "meta" / "metadata"
    path.write_text(path.read_text()[: len(path.read_text()) // 2])
    return f"cut {path.relative_to(step_dir)} in half (broken JSON)"
  arrays = [p for p in (step_dir / "state").rglob("*") if p.is_file() and p.parent.name == "d"]
  path = max(arrays, key=lambda p: p.stat().st_size)
  where = path.relative_to(step_dir)
  if kind == "delete":
    path.unlink()
    return f"deleted {where}"
  data = bytearray(path.read_bytes())
  if kind == "truncate":
    path.write_bytes(bytes(data[: len(data) // 2]))
    return f"truncated {where} to {len(data) // 2} bytes"
  data[len(data) // 2] ^= 0xFF
  path.write_bytes(bytes(data))
  return f"flipped byte {len(data) // 2} of {where}"


def final_state(workdir: pathlib.Path) -> tuple[dict, dict]:
  """(summary without timings, {leaf: sha256} of the final checkpoint)."""
  summary = json.loads((workdir / "summary.json").read_text())
  for key in TIMING_KEYS:
    summary.pop(key, None)
  meta = json.loads((newest_step(workdir) / "meta" / "metadata").read_text())
  return summary, {name: leaf["sha256"] for name, leaf in meta["leaves"].items()}


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--method", default="train", choices=tuple(CONFIGS))
  parser.add_argument("--kills", type=int, default=20, help="SIGKILLs before the final run")
  parser.add_argument("--corrupt", action="store_true", help="damage the newest step per kill")
  parser.add_argument("--root", default="/tmp/jaxml_soak", help="reference and soak workdirs")
  parser.add_argument("--checkpoint_every", type=int, default=4, help="steps between saves")
  parser.add_argument("--data_dir", default="", help="config.data.dir ('' = the default search)")
  parser.add_argument("--seed", type=int, default=0, help="of the kill times and corruptions")
  args = parser.parse_args(argv)
  if args.kills < 1 or args.checkpoint_every < 1:
    parser.error("--kills and --checkpoint_every must be >= 1")
  return args


def main(argv=None) -> int:
  args = parse_args(argv)
  rng = random.Random(args.seed)
  root = pathlib.Path(args.root)
  shutil.rmtree(root, ignore_errors=True)
  (root / "reference").parent.mkdir(parents=True, exist_ok=True)
  ref_wall, _ = run_to_end(args, root / "reference")
  total = json.loads((root / "reference" / "summary.json").read_text())["steps"]
  # Kill points: `kills` steps spread over the run in random order of arrival; a fifth of the
  # kills land during start-up instead (import, data, compile), before any step.
  targets = sorted(rng.sample(range(1, total), min(args.kills, total - 1)))
  print(f"reference: {ref_wall:.1f} s, {total} steps; kills after steps {targets}")

  workdir, attempts, pending, kills = root / "soak", [], None, 0
  while kills < args.kills:
    during_startup = rng.random() < 0.2
    target = None if during_startup else targets[min(kills, len(targets) - 1)]
    extra_s = rng.uniform(0, 10.0) if during_startup else rng.uniform(0, 1.0)
    landed, err = start_and_kill(args, workdir, target, extra_s)
    attempt = {"after_step": target, "extra_s": round(extra_s, 2), "landed": landed}
    attempts.append(attempt)
    if pending is not None and CORRUPT_WARNING in err:
      pending["reported"], pending = True, None
    if not landed:  # the run finished before the kill: start over, the kills must land mid-run
      print(f"  attempt {len(attempts)}: finished before the kill; restarting", flush=True)
      shutil.rmtree(workdir)
      kills, pending = 0, None
      continue
    kills += 1
    step = newest_step(workdir)
    attempt["newest_step"] = int(step.name) if step else None
    # One corruption at a time: the next is made once a start has reported the last one (a start
    # killed before it restores has not looked yet).
    # Only with an older step to fall back to: a run whose only checkpoint is corrupt stops with
    # exit 4 and asks for a fresh workdir (docs/errors.md), by design.
    if args.corrupt and len(saved_steps(workdir)) >= 2 and pending is None:
      kind = CORRUPTIONS[sum("corruption" in a for a in attempts) % len(CORRUPTIONS)]
      attempt["corruption"], attempt["reported"] = corrupt(step, kind), False
      pending = attempt
    print(f"  kill {kills}: {attempt}", flush=True)
  wall, err = run_to_end(args, workdir)
  if pending is not None and CORRUPT_WARNING in err:
    pending["reported"] = True

  ref_final, soak_final = final_state(root / "reference"), final_state(workdir)
  corruptions = [a for a in attempts if "corruption" in a]
  report = {
    "method": args.method,
    "config": CONFIGS[args.method],
    "kills": args.kills,
    "corrupt": args.corrupt,
    "seed": args.seed,
    "reference_wall_s": round(ref_wall, 1),
    "attempts": attempts,
    "summary_identical": ref_final[0] == soak_final[0],
    "state_identical": ref_final[1] == soak_final[1],
    "corruptions": len(corruptions),
    "corruptions_reported": sum(a["reported"] for a in corruptions),
    "date": time.strftime("%Y-%m-%d"),
    "device": f"cpu ({os.cpu_count()} cores)",
  }
  (root / "soak.json").write_text(json.dumps(report, indent=2) + "\n")
  ok = report["summary_identical"] and report["state_identical"]
  ok = ok and report["corruptions_reported"] == report["corruptions"]
  print(
    f"{args.method}: {args.kills} kills, summary identical {report['summary_identical']}, "
    f"final state identical {report['state_identical']}, corruptions reported "
    f"{report['corruptions_reported']}/{report['corruptions']} -> {'PASS' if ok else 'FAIL'}"
  )
  return 0 if ok else 1


if __name__ == "__main__":
  sys.exit(main())
