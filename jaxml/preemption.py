"""SIGTERM / SIGINT: finish the current step, save a checkpoint, exit saying how to resume.

A cluster preempting a job sends SIGTERM (and kills it a grace period later); a user presses
Ctrl-C (SIGINT). `catch_stop_signals()` turns the first such signal into a request that the
step loop (`experiment.train_steps`) honours after the step in flight; the trunk loop (which
catches the signals while it runs, `jaxml.trunks.run_trunks`) then saves
a checkpoint at that step and raises `Preempted`, which `jaxml.main` reports in one line and
exits with 128 + the signal number (the shell's convention: 143 for SIGTERM, 130 for SIGINT).
Re-running the same command resumes bit-identically from that checkpoint. A second signal
is the user insisting: it interrupts at once, without saving (the last checkpoint is kept).

The first signal is acknowledged at once with one line on stderr: the step loop never blocks
inside XLA for longer than the step in flight (`wait_ready` waits on an event, during which
Python runs this module's handler), and it dispatches no step ahead of the one in flight
(`experiment.train_steps`), so the stop takes at most that step plus the save.
"""

import contextlib
import signal
import sys
import threading

from jaxml.errors import JaxmlError

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_requested: list[int] = []  # the signal numbers received while catching
_step_in_flight: list[int] = []  # the step the loop last dispatched (for the stop message)


class Preempted(JaxmlError):
  """The run stopped on a signal after saving a checkpoint; exit code 128 + signal number."""

  def __init__(self, signum: int, step: int, workdir):
    name = signal.Signals(signum).name
    super().__init__(
      f"stopped by {name} at step {step}; checkpoint saved in {workdir}. Re-run the same "
      "command to resume."
    )
    self.exit_code = 128 + signum


def requested() -> int | None:
  """The signal number of a pending stop request, or None."""
  return _requested[0] if _requested else None


def note_step(step: int) -> None:
  """The loop dispatched `step` (0-based): the stop message names it."""
  _step_in_flight[:] = [step]


def wait_ready(tree) -> None:
  """Blocks until every array of `tree` is computed, in a way a signal can interrupt: a helper
  thread waits inside XLA while this (the main) thread waits on an event, during which Python
  runs a signal's handler at once (inside `jax.block_until_ready` itself the handler would wait
  for the whole computation)."""
  import jax  # here, so that importing this module stays cheap

  leaves = [x for x in jax.tree.leaves(tree) if hasattr(x, "is_ready")]
  if all(x.is_ready() for x in leaves):
    return
  done = threading.Event()
  failed: list[BaseException] = []

  def wait():
    try:
      jax.block_until_ready(leaves)
    except BaseException as e:  # re-raised in the caller's thread
      failed.append(e)
    finally:
      done.set()

  threading.Thread(target=wait, daemon=True).start()
  done.wait()
  if failed:
    raise failed[0]


def _handler(signum, frame):
  name = signal.Signals(signum).name
  if _requested:  # asked twice: stop now, without the checkpoint
    raise KeyboardInterrupt(f"second {name}: stopped without saving")
  _requested.append(signum)
  what = f"step {_step_in_flight[0] + 1}" if _step_in_flight else "the step in flight"
  again = "Ctrl-C" if signum == signal.SIGINT else name
  print(
    f"\njaxml: {name} received: finishing {what}, then saving a checkpoint; {again} again stops "
    "at once without saving",
    file=sys.stderr,
    flush=True,
  )


@contextlib.contextmanager
def catch_stop_signals():
  """Within the block, SIGTERM/SIGINT request a stop instead of killing the process (only in the
  main thread, the one Python delivers signals to; elsewhere the block changes nothing)."""
  if threading.current_thread() is not threading.main_thread():
    yield
    return
  previous = {s: signal.signal(s, _handler) for s in STOP_SIGNALS}
  _requested.clear()
  _step_in_flight.clear()
  try:
    yield
  finally:
    for s, handler in previous.items():
      signal.signal(s, handler)
    _requested.clear()
    _step_in_flight.clear()
