"""The run-time estimate (`experiment.EtaEstimate`), the lines a run prints and the step clock."""

import io
import re
import sys

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


def test_messages_start_on_a_line_of_their_own_above_the_bar(capsys):
  from tqdm import tqdm

  bar = tqdm(total=10, file=sys.stderr, disable=False, dynamic_ncols=False, ncols=60)
  bar.update(3)
  experiment.say("a message")
  bar.close()
  err = capsys.readouterr().err
  # tqdm clears the bar's line (carriage return) before the message: it starts a line.
  assert re.search(r"(^|[\r\n])jaxml: a message\n", err), err


def test_images_per_s_clock_and_bar_rate_leave_the_compiling_step_out(tiny_train_config, tmp_path):
  from tqdm import tqdm

  run = experiment.PopulationRun(tiny_train_config(**{"population.size": 1}), str(tmp_path))
  pop = run.engine.init_population()
  bar = tqdm(total=run.total_steps, file=io.StringIO(), smoothing=0)
  timer = {}
  pop, reached = experiment.train_steps(run, pop, {}, {}, 0, 5, bar, timer)
  pop, reached = experiment.train_steps(run, pop, {}, {}, 5, 8, bar, timer)
  run.close()
  assert reached == 8
  # Each stretch's first step (the one that may compile) is out of the images/s clock.
  assert timer["timed_steps"] == (5 - 1) + (8 - 5 - 1)
  assert 0 < timer["timed_s"] < timer["train_s"]
  # The bar's rate counts from the end of the run's first step, once.
  assert bar.initial == 1 and bar.compile_excluded == 1


def test_cpu_advice_names_the_experiment_that_was_run(monkeypatch):
  monkeypatch.setattr(EtaEstimate, "config_path", "experiments/ohl/cifar10_resnet18.py")
  text = EtaEstimate(10_000, "cpu").message(per_step=2.0, remaining=9_000)
  assert "--config experiments/ohl/cifar10_resnet18.py:smoke" in text
