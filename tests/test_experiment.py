"""The run-time estimate printed once a few steps are timed (`experiment.EtaEstimate`)."""

import jax.numpy as jnp
import pytest

from jaxml import experiment
from jaxml.experiment import EtaEstimate, human_duration


@pytest.mark.parametrize(
  "seconds,text",
  [(42, "42 s"), (420, "7 min"), (3 * 3600 + 300, "3 h 05 min"), (4.2 * 86400, "4.2 days")],
)
def test_human_duration(seconds, text):
  assert human_duration(seconds) == text


def test_a_long_cpu_run_names_the_smoke_variant_and_the_gpu_install():
  long_cpu = EtaEstimate(10_000, "cpu").message(per_step=2.0, remaining=9_000)
  assert long_cpu.startswith("about 5 h 00 min of training left (9000 steps at 2 s/step on cpu")
  assert ":smoke" in long_cpu and '".[cuda]"' in long_cpu
  # An hour or less on a CPU, or any length on a GPU, is said without advice.
  assert "smoke" not in EtaEstimate(10_000, "cpu").message(per_step=0.3, remaining=9_000)
  assert "smoke" not in EtaEstimate(10_000, "gpu").message(per_step=2.0, remaining=9_000)


def test_measures_after_the_first_step_and_prints_once(monkeypatch, capsys):
  clock = iter(range(100))  # every perf_counter call is one second later
  monkeypatch.setattr(experiment.time, "perf_counter", lambda: float(next(clock)))
  eta = EtaEstimate(total_steps=100, platform="cpu", measure_steps=3, seconds=0.0)
  pop = jnp.zeros(2)
  eta.begin()
  for step in range(1, 8):  # step 1 compiles: the window runs from its end
    eta.after_step(step, pop)
  eta.begin()
  eta.after_step(9, pop)
  lines = capsys.readouterr().err.splitlines()
  # The first stretch says it compiles. The clock reads 0 at the end of step 1, then 1, 2, 3 at
  # steps 2-4: 3 s over 3 steps, 96 steps left; later steps and stretches print nothing more.
  assert lines == [
    "jaxml: compiling the train step on cpu (the first step waits for it) ...",
    f"jaxml: {eta.message(per_step=1.0, remaining=96)}",
  ]


def test_a_run_shorter_than_the_window_prints_nothing(capsys):
  eta = EtaEstimate(total_steps=3, platform="cpu")
  for step in range(1, 4):
    eta.after_step(step, jnp.zeros(1))
  assert capsys.readouterr().err == ""
