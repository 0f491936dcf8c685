"""Where the heavy work runs: in this process, or on a Dask cluster (``dask.distributed``) for ``--scheduler``
(an existing cluster: SLURM via dask-jobqueue, a GPU cluster with one worker per GPU) or ``--workers N`` (a local
cluster of N processes). See docs/benchmarks.md for how to start one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from .io.files import InputError


def dask_client(scheduler: str | None = None, n_workers: int | None = None):
    """A client of an existing scheduler (``scheduler`` address), or of a local cluster of ``n_workers``."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise InputError(
            "--scheduler / --workers need dask.distributed: pip install 'deepfinder-unsup[dask]'"
        ) from None
    if scheduler:
        return Client(scheduler)
    threads = max(1, (os.cpu_count() or 1) // max(1, n_workers or 1))
    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=threads, processes=True, dashboard_address=None)
    return Client(cluster)


@contextlib.contextmanager
def maybe_dask(scheduler: str | None = None, n_workers: int | None = None) -> Iterator:
    """``with maybe_dask(address, n) as client:`` a Dask client (None when neither is given), closed on exit
    together with the local cluster it started."""
    if not (scheduler or n_workers):
        yield None
        return
    client = dask_client(scheduler, n_workers)
    try:
        yield client
    finally:
        cluster = None if scheduler else getattr(client, "cluster", None)
        client.close()
        if cluster is not None:
            cluster.close()
