"""How many threads the numerical libraries may use: the cores no other process is using.

scikit-learn's t-SNE and k-means run on OpenMP, LAPACK's eigensolvers on OpenBLAS; both start one thread per core
and, between their many short parallel steps, wait for every thread. When another process holds the cores (a
training or an embedding beside ``cluster``, a shared workstation), a waiting step lasts until the OS schedules the
descheduled thread again: measured on 2 cores with a training beside it, the k-means sweep of 2,000 picks took 37 s
on both cores and 2.4 s on one (``benchmarks/busy_threads.py``, docs/benchmarks.md). So the steps that ``cluster``
runs are given the cores that were idle a moment before they start; an explicit ``OMP_NUM_THREADS`` is the user's
choice and is kept.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, as a batch scheduler sets it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def cpu_idle_times(cpus: set[int], stat: str | os.PathLike = "/proc/stat") -> dict[int, tuple[int, int]]:
    """Per CPU in ``cpus``: (idle + iowait, total) clock ticks since boot, from ``stat`` (Linux's /proc/stat);
    empty where it is missing."""
    try:
        lines = Path(stat).read_text().splitlines()
    except OSError:
        return {}
    times = {}
    for line in lines:
        name, *fields = line.split() or [""]
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus and len(fields) >= 8:
            ticks = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
            times[int(name[3:])] = (ticks[3] + ticks[4], sum(ticks))
    return times


def idle_share(before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]]) -> float:
    """The cores' worth of idle time between two ``cpu_idle_times`` readings (0 to the number of CPUs)."""
    share = 0.0
    for cpu, (idle, total) in after.items():
        if cpu in before and total > before[cpu][1]:
            share += (idle - before[cpu][0]) / (total - before[cpu][1])
    return share


def free_cores(interval: float = 0.25) -> int:
    """How many of ``usable_cores()`` sat idle over the next ``interval`` seconds (this process sleeps meanwhile,
    so its own work is not counted), at least one; from the 1-minute load average where /proc/stat is missing."""
    cores = usable_cores()
    try:
        cpus = set(os.sched_getaffinity(0))
    except AttributeError:
        cpus = set()
    before = cpu_idle_times(cpus)
    if before:
        time.sleep(interval)
        idle = idle_share(before, cpu_idle_times(cpus))
    else:
        try:
            idle = cores - os.getloadavg()[0]
        except OSError:  # no load average either: assume an idle machine
            idle = cores
    return int(max(1, min(cores, round(idle))))


@contextlib.contextmanager
def numeric_threads_on_free_cores() -> Iterator[int | None]:
    """``with numeric_threads_on_free_cores() as n:`` OpenMP and BLAS limited to ``free_cores()`` threads inside
    the block (``n``), or left alone (``n`` is None) where the user set one of ``THREAD_VARIABLES``."""
    if any(os.environ.get(name) for name in THREAD_VARIABLES):
        yield None
        return
    from threadpoolctl import threadpool_limits

    n = free_cores()
    with threadpool_limits(limits=n):
        yield n
