"""What `cluster`'s numerical steps cost on every core against on the free cores only, on the machine as it is now.

Run it twice: on an idle machine (both ways should take about as long: `free_cores()` is then every core) and with
another process holding the cores (a training, or ``--load N`` busy processes started here), where OpenMP's and
OpenBLAS's threads wait for descheduled siblings:

    python benchmarks/busy_threads.py --picks 186 2000 --out OUT.json             # the machine as it is
    python benchmarks/busy_threads.py --picks 186 2000 --load 2 --out OUT.json    # two busy processes beside it

Steps timed (the same calls `cluster` makes): the report's t-SNE (`report.tsne_map`), the neighbour graph's
spectrum for the label-free k (`cluster.graph_laplacian_spectrum`), and the k-means sweep k = 2..15
(`cluster.sweep_k`), on Gaussian blobs of 10 classes in 32-D.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from deepfinder_unsup.cluster import graph_laplacian_spectrum, normalise_features, sweep_k
from deepfinder_unsup.report import tsne_map
from deepfinder_unsup.threads import free_cores, usable_cores


def cpu_name() -> str:
    """The processor's model name (Linux), else what the platform module knows."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def spin(stop_at: float) -> None:
    """A busy process: what a training beside `cluster` looks like to the scheduler."""
    x = 0
    while time.time() < stop_at:
        x += 1


def blobs(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    return normalise_features(rng.normal(size=(10, 32))[labels] * 2 + rng.normal(size=(n, 32)))


def timed(step, threads: int) -> float:
    with threadpool_limits(limits=threads):
        t0 = time.perf_counter()
        step()
        return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--picks", nargs="+", type=int, default=[186, 2000])
    parser.add_argument("--load", type=int, default=0, help="busy processes to start beside the steps")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    busy = [multiprocessing.Process(target=spin, args=(time.time() + 3600,), daemon=True) for _ in range(args.load)]
    for p in busy:
        p.start()
    time.sleep(2.0 if busy else 0.0)
    try:
        free = free_cores()
        every = usable_cores()
        rows = []
        for n in args.picks:
            x = blobs(n)
            steps = {
                "tsne": lambda x=x: tsne_map(x),
                "spectrum": lambda x=x: graph_laplacian_spectrum(x),
                "kmeans_sweep": lambda x=x: sweep_k(x, range(2, 16)),
            }
            for name, step in steps.items():
                t_every, t_free = timed(step, every), timed(step, free)
                rows.append(
                    {
                        "picks": n,
                        "step": name,
                        "s_every_core": round(t_every, 2),
                        "s_free_cores": round(t_free, 2),
                        "ratio": round(t_every / t_free, 2),
                    }
                )
                print(rows[-1], flush=True)
    finally:
        for p in busy:
            p.terminate()
    doc = {
        "machine": f"{cpu_name()}, {usable_cores()} usable cores",
        "busy_processes_started": args.load,
        "cores": every,
        "free_cores_found": free,
        "pools": [(p["internal_api"], p["num_threads"]) for p in threadpool_info()],
        "rows": rows,
    }
    Path(args.out).write_text(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
