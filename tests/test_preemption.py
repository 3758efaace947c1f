"""A stop signal is acknowledged at once and honoured after the step in flight, whatever the step
time (`jaxml.preemption`, `experiment.train_steps`): a deliberately slow step (a host callback
sleeping `STEP_S`) shows that no step is queued behind the one in flight."""

import os
import signal
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxml import experiment, preemption

STEP_S = 0.4  # each train step sleeps this long on the host (XLA runs the callback in the step)


def _slow_run(config, workdir, done: list):
  run = experiment.PopulationRun(config, str(workdir))
  fast = run.engine.train_step_one

  def sleep(step):
    time.sleep(STEP_S)
    done.append(int(step))
    return np.float32(0.0)

  def slow_step(state, inputs):
    zero = jax.pure_callback(sleep, jax.ShapeDtypeStruct((), jnp.float32), inputs.step)
    state, metrics = fast(state, inputs)
    return state, {**metrics, "loss": metrics["loss"] + zero}

  run.use_model(run.engine.model, train_step=slow_step)
  return run


def test_stop_waits_for_the_step_in_flight_only(tiny_train_config, tmp_path, capfd):
  config = tiny_train_config(**{"population.size": 1, "num_steps": 40})
  done: list[int] = []
  run = _slow_run(config, tmp_path, done)
  pop = run.engine.init_population()
  # Compile outside the timed part: one step, waited for.
  pop, _ = experiment.train_steps(run, pop, {}, {}, 0, 1)
  sent = {}

  def send():
    sent["t"], sent["done"] = time.perf_counter(), len(done)
    os.kill(os.getpid(), signal.SIGINT)

  with preemption.catch_stop_signals():
    timer = threading.Timer(4 * STEP_S, send)
    timer.start()
    pop, reached = experiment.train_steps(run, pop, {}, {}, 1, 40)
    returned = time.perf_counter()
    assert preemption.requested() == signal.SIGINT
  timer.join()
  run.close()
  # Only the step running when the signal came finished after it (unbounded dispatch queues
  # every remaining step: 35 more here).
  assert len(done) - sent["done"] <= 1
  assert reached == len(done) < 40
  assert returned - sent["t"] < STEP_S + 1.5  # one step plus scheduling slack on a busy CPU
  err = capfd.readouterr().err
  assert err.count("SIGINT received: finishing step") == 1 and "again stops" in err


def test_wait_ready_returns_for_host_values():
  preemption.wait_ready({"a": np.zeros(3), "b": jnp.ones(2) * 2, "c": 1.0})
