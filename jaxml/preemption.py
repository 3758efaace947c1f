"""SIGTERM / SIGINT: finish the current step, save a checkpoint, exit saying how to resume.

A cluster preempting a job sends SIGTERM (and kills it a grace period later); a user presses
Ctrl-C (SIGINT). `catch_stop_signals()` turns the first such signal into a request that the
step loop (`experiment.train_steps`) honours after the step in flight; the trunk loop (which
catches the signals while it runs, `jaxml.trunks.run_trunks`) then saves
a checkpoint at that step and raises `Preempted`, which `jaxml.main` reports in one line and
exits with 128 + the signal number (the shell's convention: 143 for SIGTERM, 130 for SIGINT).
Re-running the same command resumes bit-identically from that checkpoint. A second signal
while the checkpoint is written is the user insisting: it interrupts at once.
"""

import contextlib
import signal
import threading

from jaxml.errors import JaxmlError

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_requested: list[int] = []  # the signal numbers received while catching


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


def _handler(signum, frame):
  if _requested:  # asked twice: stop now, without the checkpoint
    raise KeyboardInterrupt(f"second {signal.Signals(signum).name}")
  _requested.append(signum)


@contextlib.contextmanager
def catch_stop_signals():
  """Within the block, SIGTERM/SIGINT request a stop instead of killing the process (only in the
  main thread, the one Python delivers signals to; elsewhere the block changes nothing)."""
  if threading.current_thread() is not threading.main_thread():
    yield
    return
  previous = {s: signal.signal(s, _handler) for s in STOP_SIGNALS}
  _requested.clear()
  try:
    yield
  finally:
    for s, handler in previous.items():
      signal.signal(s, handler)
    _requested.clear()
