"""OpenMP / BLAS threads on the idle cores only (deepfinder_unsup/threads.py): the idle share is read right, busy
cores are seen as busy, the limit holds inside the block and around `cluster`'s steps, and a user's
OMP_NUM_THREADS is left alone."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from deepfinder_unsup import threads


def _pool_threads() -> set[int]:
    return {p["num_threads"] for p in threadpool_info() if p["internal_api"] in ("openmp", "openblas", "mkl")}


def test_idle_share_is_each_cpus_idle_fraction_summed():
    before = {0: (100, 1000), 1: (200, 1000), 2: (0, 50)}
    after = {0: (150, 1100), 1: (200, 1100), 3: (9, 9)}  # cpu 2 went offline, cpu 3 came up: neither counts
    assert threads.idle_share(before, after) == pytest.approx(50 / 100 + 0 / 100)
    assert threads.idle_share(before, before) == 0.0  # no time passed: nothing known to be idle


def test_the_stat_file_gives_idle_plus_iowait_and_the_sum_of_eight_fields_per_cpu_asked(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text(
        "cpu  9 9 9 9 9 9 9 9 0 0\n"  # the machine's total: not a CPU
        "cpu0 10 1 5 100 7 2 3 4 0 0\n"
        "cpu1 20 0 10 300 0 0 0 0 0 0\n"
        "cpu2 1 1 1\n"  # a short line is skipped, not an error
        "\n"
        "intr 123 4 5\n"
    )
    assert threads.cpu_idle_times({0, 1, 2, 5}, stat) == {0: (107, 132), 1: (300, 330)}
    assert threads.cpu_idle_times({1}, stat) == {1: (300, 330)}
    assert threads.cpu_idle_times({0}, tmp_path / "missing") == {}
    live = threads.cpu_idle_times(set(range(4096)))
    assert all(0 <= idle <= total for idle, total in live.values())


def test_cores_held_by_other_processes_are_not_free():
    cores = threads.usable_cores()
    if cores > 16 or not threads.cpu_idle_times(set(range(4096))):
        pytest.skip("needs /proc/stat and at most 16 cores to fill")
    spin = "import time\nstop = time.time() + 20\nwhile time.time() < stop: pass"
    busy = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(cores)]
    try:
        time.sleep(0.5)
        assert threads.free_cores(interval=0.5) == 1  # every core busy: one thread, never zero
    finally:
        for p in busy:
            p.kill()
            p.wait()


def test_threads_are_limited_inside_the_block_and_restored_after(monkeypatch):
    for name in threads.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(threads, "free_cores", lambda: 1)
    before = _pool_threads()
    with threads.numeric_threads_on_free_cores() as n:
        assert n == 1 and _pool_threads() <= {1}
    assert _pool_threads() == before


def test_a_users_thread_setting_is_left_alone(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.setattr(threads, "free_cores", lambda: 1)
    before = _pool_threads()
    with threads.numeric_threads_on_free_cores() as n:
        assert n is None and _pool_threads() == before


def test_cluster_runs_its_numerical_steps_on_the_free_cores(tmp_path, monkeypatch):
    """The k sweep inside `cluster` sees the limit (37 s against 2.4 s for 2,000 picks beside a training)."""
    from deepfinder_unsup import cluster
    from deepfinder_unsup.cli import main
    from deepfinder_unsup.io.dataset import write_embeddings
    from deepfinder_unsup.io.objl import new_object

    if threads.usable_cores() < 2 or not _pool_threads():
        pytest.skip("one core, or no OpenMP / BLAS pool: nothing to limit")
    for name in threads.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(threads, "free_cores", lambda: 1)
    seen: list[set[int]] = []
    real_sweep = cluster.sweep_k

    def spy(*args, **kwargs):
        seen.append(_pool_threads())
        return real_sweep(*args, **kwargs)

    monkeypatch.setattr(cluster, "sweep_k", spy)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 60)
    objl = [new_object(int(lab) + 1, i, 0, 0) for i, lab in enumerate(labels)]
    emb = rng.normal(size=(3, 8))[labels] * 4 + rng.normal(size=(60, 8))
    path = write_embeddings(tmp_path / "e.h5", emb, objl, 10.0, 40)
    assert main(["cluster", str(path), "--k", "2:4", "--no-report", "--out", str(tmp_path / "c"), "--quiet"]) == 0
    assert seen == [{1}]
