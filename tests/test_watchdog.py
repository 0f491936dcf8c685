"""The training watchdog: a run whose data workers died while the main thread waited for a batch ends with one
line and its status (4, or 130 / 143 when a signal reached it), instead of waiting forever (session 35)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deepfinder_unsup.watchdog import STALLED_STATUS, StallWatchdog, exit_within

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
EXIT_GUARD_S = 5.0  # the program's exit guard in these runs: cli.EXIT_GUARD_S (30 s) cost each test 30 s of waiting
RUN_CLI = (  # the console script with a shorter exit guard: the same code path, a test-sized constant
    "import sys; from deepfinder_unsup import cli; "
    f"cli.EXIT_GUARD_S = {EXIT_GUARD_S}; sys.argv[0] = 'deepfinder-unsup'; sys.exit(cli.main())"
)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def watchdog(clock: Clock, **kw) -> StallWatchdog:
    return StallWatchdog(60.0, grace_s=5.0, clock=clock, exit=lambda status: None, **kw)


def test_only_expected_steps_that_stop_coming_end_the_run():
    clock = Clock()
    dog = watchdog(clock)
    clock.now = 1000.0
    assert dog.check() is None  # nothing expected yet (model building, first compile)
    dog.expect_steps()
    clock.now += 59.0
    assert dog.check() is None
    dog.step_done()
    clock.now += 59.0
    assert dog.check() is None  # each step restarts the clock
    dog.pause()
    clock.now += 3600.0
    assert dog.check() is None  # validation and callbacks run in Python: not a stall
    dog.expect_steps()
    clock.now += 60.0
    status, line = dog.check()
    assert status == STALLED_STATUS
    assert line.startswith("error: no training step finished for 60 s (bound 60 s)")
    assert "--resume" in line


def test_an_epochs_first_step_has_its_own_longer_bound():
    """Before an epoch's first step the workers simulate its first batches (and the first epoch traces the step):
    a tight bound must not end a healthy run there; once a step has finished, the tight bound holds again."""
    clock = Clock()
    dog = watchdog(clock, first_step_s=600.0)
    dog.expect_steps()
    clock.now += 599.0
    assert dog.check() is None  # 10 times the bound: still waiting for the first step, not a stall
    dog.step_done()
    clock.now += 59.0
    assert dog.check() is None
    clock.now += 1.0
    assert dog.check()[1].startswith("error: no training step finished for 60 s (bound 60 s)")
    dog.pause()
    dog.expect_steps()  # the next epoch: its first step is given the longer bound again
    clock.now += 600.0
    status, line = dog.check()
    assert status == STALLED_STATUS
    assert line.startswith("error: no training step finished for 600 s (bound 600 s, an epoch's first step)")
    assert watchdog(Clock(), first_step_s=1.0).first_step_s == 60.0  # never shorter than the bound itself


def test_a_signal_not_followed_by_a_step_ends_the_run_as_interrupted():
    clock = Clock()
    dog = watchdog(clock)
    dog.expect_steps()
    dog._note_signals(bytes([signal.SIGTERM]))
    clock.now += 4.0
    assert dog.check() is None  # within the grace the main thread may still act on it
    dog.step_done()  # it did not need to: the signal was a worker's, steps go on
    clock.now += 10.0
    assert dog.check() is None
    dog._note_signals(bytes([signal.SIGINT]))
    clock.now += 5.0
    assert dog.check() == (130, "interrupted (SIGINT): outputs not completed were removed")
    dog.pause()
    dog._note_signals(bytes([signal.SIGTERM]))  # a paused main thread runs its own handler
    clock.now += 100.0
    assert dog.check() is None


def test_the_grace_is_twice_the_longest_step_and_ends_before_a_batch_systems_sigkill():
    """A signal reaches a main thread inside a step only when the step returns: the grace waits twice the longest
    step (the first step of an epoch, which waits for batches, not counted), and by default ends the run well
    before SLURM's SIGKILL, 30 s after its SIGTERM (the grace was 30 s before session 50)."""
    assert StallWatchdog(60.0).grace <= 10.0
    clock = Clock()
    dog = watchdog(clock)
    dog.expect_steps()
    clock.now += 50.0
    dog.step_done()  # the epoch's first step: 50 s, not a step's length
    assert dog.grace == 5.0
    for _ in range(3):
        clock.now += 8.0
        dog.step_done()
    assert dog.grace == 16.0
    dog._note_signals(bytes([signal.SIGTERM]))
    clock.now += 15.9
    assert dog.check() is None  # the main thread may still be inside its 8 s step
    clock.now += 0.1
    assert dog.check() == (143, "interrupted (SIGTERM): outputs not completed were removed")


def test_the_thread_cleans_up_and_exits_once_and_restores_the_wakeup_fd():
    ended, cleaned = [], []
    dog = StallWatchdog(0.3, cleanup=lambda: cleaned.append(1), poll_s=0.05, exit=ended.append)
    before = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(before)
    with dog:
        dog.expect_steps()
        time.sleep(1.0)
    assert ended == [STALLED_STATUS] and cleaned == [1]
    assert signal.set_wakeup_fd(before) == before  # the process's wakeup fd is as it was


def test_a_bound_that_is_not_positive_is_refused():
    with pytest.raises(ValueError, match="must be positive"):
        StallWatchdog(0.0)


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_exit_within_ends_the_worker_processes_then_the_process_with_its_status():
    import multiprocessing

    ended = []
    child = multiprocessing.get_context("fork").Process(target=time.sleep, args=(60,), daemon=True)
    child.start()
    exit_within(0.2, 143, exit=ended.append).join(timeout=30)
    child.join(timeout=10)
    assert ended == [143]
    assert child.exitcode == -signal.SIGKILL


def _train_and_kill_its_workers(tmp_path: Path, config: Path, *extra: str) -> tuple[subprocess.Popen, list[int]]:
    """``train`` on 2 worker processes, started as a program, simulating with ``config`` (small boxes: what is
    tested does not depend on the box); once batches flow, SIGKILL to both workers (what the out-of-memory killer
    does). Returns the process and the worker processes seen so far (replacements included)."""
    from deepfinder_unsup.cli import main

    shapes = ["builtin:ring", "builtin:barrel"]
    val = tmp_path / "val" / "dataset.h5"
    args = ["simulate", "--structures", *shapes, "--per-class", "3", "--config", str(config), "--quiet"]
    assert main([*args, "--out", str(val.parent)]) == 0
    out = tmp_path / "run"
    args = ["train", "--structures", *shapes, "--val", val, "--batch-size", "16", "--steps-per-epoch", "10000"]
    args += ["--sim-config", config]
    args += ["--epochs", "1", "--workers", "2", "--reuse", "2", "--out", out, "--quiet", *extra]
    proc = subprocess.Popen(
        [sys.executable, "-c", RUN_CLI, *map(str, args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    t0, handed_on = time.time(), set()
    # the workers have handed on batches and steps run: 4 cache files seen in all (a fast training step takes each
    # file soon after it is written, so fewer than 4 may ever be there at once: session 42's Xeon with AMX)
    while len(handed_on) < 4:
        handed_on |= {path.name for path in (out / "reuse_cache").glob("*")}
        if proc.poll() is not None or time.time() - t0 > 300:
            proc.kill()
            pytest.fail(f"training never got going: {proc.stderr.read()}")
        time.sleep(0.2)
    workers = _children(proc.pid)
    assert workers
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    time.sleep(3.0)  # the pool forks replacements, which wait for the queue's lock that a killed worker may hold
    return proc, workers + _children(proc.pid)


def _ended(proc: subprocess.Popen, timeout: float) -> str:
    try:
        return proc.communicate(timeout=timeout)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            for pid in _children(proc.pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.skipif(not Path("/proc").exists(), reason="finds the worker processes through /proc")
def test_train_whose_workers_are_killed_mid_batch_ends_with_one_line_and_no_process_left(tmp_path, small_box_config):
    """SIGKILL to both simulating workers while batches flow (what the out-of-memory killer does): the pool waits
    forever for a lost batch or for the queue lock a killed worker held; the watchdog ends the run (status 4, one
    line naming the killed workers), removes the reuse cache and leaves no process behind."""
    proc, workers = _train_and_kill_its_workers(tmp_path, small_box_config, "--stall-minutes", "0.25")
    err = _ended(proc, 180)
    assert proc.returncode == STALLED_STATUS, err
    assert "Traceback" not in err
    last = [line for line in err.splitlines() if line.strip()][-1]
    assert last.startswith("error: no training step finished for") and "by SIGKILL" in last, err
    out = tmp_path / "run"
    assert not (out / "reuse_cache").exists()
    assert not (out / "model.keras").exists()
    time.sleep(1.0)
    assert [pid for pid in workers if _alive(pid)] == []


@pytest.mark.skipif(not Path("/proc").exists(), reason="finds the worker processes through /proc")
def test_train_whose_workers_were_killed_still_ends_on_sigterm(tmp_path, small_box_config):
    """Workers SIGKILLed, then SIGTERM to the run: it says "interrupted (SIGTERM)" and ends with 143 and no process
    left, although a killed worker may hold the pool's queue lock that the interpreter's exit waits for (it waited
    forever before: the exit guard of cli.main, or the watchdog's grace if no step comes)."""
    proc, workers = _train_and_kill_its_workers(tmp_path, small_box_config)
    proc.send_signal(signal.SIGTERM)
    err = _ended(proc, EXIT_GUARD_S + 150)
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    assert [line for line in err.splitlines() if line.strip()][-1].startswith("interrupted (SIGTERM)"), err
    time.sleep(1.0)
    assert [pid for pid in workers if _alive(pid)] == []
