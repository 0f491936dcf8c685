"""Ends a training run that can no longer end itself: its data workers died while the main thread waited for a batch.

Why: Keras feeds ``fit`` from a ``multiprocessing.Pool``; a worker killed in the middle of a batch (the out-of-memory
killer, a signal sent to the whole process group) leaves the pool waiting forever, for that batch's result or for
the task queue's lock the dead worker held (its replacements wait for it too), and the main thread waits inside
TensorFlow, where Python runs neither signal handlers nor anything else (session 36: seen with SIGKILLed workers;
the same lock also hangs the interpreter's exit, see :func:`exit_within`). A thread of ours still runs: it ends the
process when no training step has finished for ``bound_s`` seconds, or when a SIGTERM / SIGINT reached the process
but no step followed within the grace: ``grace_s`` seconds or twice the longest step seen, whichever is longer (the
main thread acts on a signal when its step returns to Python, so it would have acted otherwise). 10 s by default, not
30 as before session 50: a batch system's SIGKILL follows its SIGTERM after 30 s (SLURM's default ``KillWait``), and
the cleanup must come first. It then calls ``cleanup``, ends the worker processes, writes one line on stderr and
exits: nothing is written after the last completed epoch, whose
checkpoint ``--resume`` continues from.

The caller marks where steps are expected: :meth:`expect_steps` when an epoch's steps start, :meth:`step_done` after
each, :meth:`pause` around work in the main thread (validation, callbacks), which handles signals itself.
"""

from __future__ import annotations

import multiprocessing
import os
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable

INTERRUPTED_STATUS: dict[int, int] = {signal.SIGINT: 130, signal.SIGTERM: 143}
STALLED_STATUS = 4  # the CLI's status for a run ended by the watchdog (see cli.main)


class StallWatchdog:
    """A daemon thread that ends the process when expected training steps stop coming (see the module's doc).

    ``first_step_s`` (default ``bound_s``) bounds instead the wait for an epoch's first step, which also waits for
    the workers' first batches and, in the first epoch, for TensorFlow to trace the step: on a loaded machine that
    takes far longer than a step, and a tight bound must not end a healthy run there (session 38: a 15 s bound
    ended one whose first step waited on 2 cores shared by four processes).
    ``exit`` and ``clock`` are replaceable for tests; ``poll_s`` is how often the thread looks.
    """

    def __init__(
        self,
        bound_s: float,
        cleanup: Callable[[], None] = lambda: None,
        first_step_s: float | None = None,
        grace_s: float = 10.0,
        poll_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        exit: Callable[[int], None] = os._exit,
    ):
        if bound_s <= 0:
            raise ValueError(f"the stall bound must be positive, got {bound_s}")
        self.bound_s, self.grace_s, self.poll_s = bound_s, grace_s, poll_s
        self.first_step_s = max(bound_s, first_step_s or bound_s)
        self.cleanup, self.clock, self.exit = cleanup, clock, exit
        self._lock = threading.Lock()
        self._expecting = False
        self._stepped = False  # a step has finished since steps were last expected
        self._last_step = clock()
        self._longest_step = 0.0  # seconds between two steps of one epoch (an epoch's first step waits longer)
        self._signal: tuple[int, float] | None = None  # (signal number, when) not yet followed by a step
        self._workers: dict[int, multiprocessing.process.BaseProcess] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._previous_wakeup_fd: int | None = None
        self.ended: tuple[int, str] | None = None  # (status, line) once the watchdog has ended the run

    # -- marks from the training loop --------------------------------------------------------------------------
    def expect_steps(self) -> None:
        """Steps are expected from now on: the clock starts again."""
        with self._lock:
            self._expecting, self._stepped, self._last_step, self._signal = True, False, self.clock(), None

    def step_done(self) -> None:
        with self._lock:
            now = self.clock()
            if self._stepped:
                self._longest_step = max(self._longest_step, now - self._last_step)
            self._stepped, self._last_step, self._signal = True, now, None

    @property
    def grace(self) -> float:
        """Seconds a signal may wait for the next step before the run is ended as interrupted."""
        return max(self.grace_s, 2.0 * self._longest_step)

    def pause(self) -> None:
        """The main thread works in Python (it acts on signals itself): no steps are expected."""
        with self._lock:
            self._expecting, self._signal = False, None

    # -- life ----------------------------------------------------------------------------------------------------
    def __enter__(self) -> StallWatchdog:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        if threading.current_thread() is threading.main_thread():  # only the main thread may set the wakeup fd
            reader, writer = socket.socketpair()
            reader.setblocking(False)
            writer.setblocking(False)
            self._previous_wakeup_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
            self._wake = (reader, writer)
        self._thread = threading.Thread(target=self._run, name="stall-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._wake is not None:
            signal.set_wakeup_fd(self._previous_wakeup_fd if self._previous_wakeup_fd is not None else -1)
            for end in self._wake:
                end.close()
            self._wake = None

    # -- the thread ----------------------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            self._note_signals(self._wait())
            self._note_workers()
            verdict = self.check()
            if verdict is not None:
                self._end(*verdict)
                return

    def _wait(self) -> bytes:
        """Sleep ``poll_s`` or until a signal arrives; the signal numbers that arrived."""
        if self._wake is None:
            self._stop.wait(self.poll_s)
            return b""
        ready, _, _ = select.select([self._wake[0]], [], [], self.poll_s)
        try:
            return self._wake[0].recv(64) if ready else b""
        except (BlockingIOError, OSError):
            return b""

    def _note_signals(self, numbers: bytes) -> None:
        with self._lock:
            for number in numbers:
                if number in INTERRUPTED_STATUS and self._expecting and self._signal is None:
                    self._signal = (number, self.clock())

    def _note_workers(self) -> None:
        """Keep every child process seen, to say how the workers ended (a dead one leaves the list)."""
        for child in multiprocessing.active_children():
            self._workers.setdefault(child.pid or 0, child)

    def check(self) -> tuple[int, str] | None:
        """(exit status, line) when the run must end now, else None."""
        with self._lock:
            if not self._expecting:
                return None
            now = self.clock()
            if self._signal is not None and now - self._signal[1] >= self.grace:
                name = signal.Signals(self._signal[0]).name
                return INTERRUPTED_STATUS[self._signal[0]], f"interrupted ({name}): outputs not completed were removed"
            bound = self.bound_s if self._stepped else self.first_step_s
            if now - self._last_step >= bound:
                which = "" if bound == self.bound_s else ", an epoch's first step"
                return STALLED_STATUS, (
                    f"error: no training step finished for {now - self._last_step:.0f} s (bound {bound:.0f} s{which})"
                    f"{self._dead_workers()}: the run is stopped; --resume continues from the last completed epoch"
                )
        return None

    def _dead_workers(self) -> str:
        """The child processes seen that ended by a signal (SIGKILL: most often the out-of-memory killer)."""
        ended = [
            f"{p.pid} by {_signal_name(-p.exitcode)}"
            for p in self._workers.values()
            if p.exitcode is not None and p.exitcode < 0
        ]
        return f"; worker processes ended by a signal: {', '.join(ended)}" if ended else ""

    def _end(self, status: int, line: str) -> None:
        self.ended = (status, line)
        try:
            self.cleanup()
        finally:
            for child in multiprocessing.active_children():
                child.kill()
            print(line, file=sys.stderr, flush=True)
            self.exit(status)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def exit_within(seconds: float, status: int, exit: Callable[[int], None] = os._exit) -> threading.Thread:
    """End the process with ``status`` if it is still alive ``seconds`` from now (a daemon thread).

    Why: the interpreter's exit runs multiprocessing's finalizers, and a ``Pool`` one of whose workers died while
    holding the task queue's lock waits for that lock forever (``Pool._help_stuff_finish``), as do the workers
    that replaced it, so a run that had already said "interrupted" stayed alive (session 35's two-hour hang: the
    same stack seen again in session 36). Daemon threads
    still run while those finalizers do: this one ends the worker processes still there, then the process.
    """

    def end_late() -> None:
        time.sleep(seconds)
        for child in multiprocessing.active_children():  # replacement pool workers wait for that lock too
            child.kill()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        exit(status)

    thread = threading.Thread(target=end_late, name="exit-guard", daemon=True)
    thread.start()
    return thread
