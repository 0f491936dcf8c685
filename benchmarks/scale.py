"""Scale checks of issue #11: memory of a streamed embedding, clustering + report of many particles, Dask.

    python benchmarks/scale.py memory --picks 2000 20000 [--tomograms 10]
    python benchmarks/scale.py cluster --particles 200000
    python benchmarks/scale.py dask --picks 1200

``memory``: ``deepfinder-unsup embed`` (a subprocess each) on synthetic tomograms (10 x 200 x 512 x 512 float32,
200 MB each) with N random picks; peak resident memory of the process (ru_maxrss) and its time. Streaming holds
one unit, so the peak must not grow with N.
``cluster``: ``deepfinder-unsup cluster --k 2:15`` with the report on N synthetic 32-D embeddings (20 Gaussian
classes) with their central slices: wall time and peak memory.
``dask``: the same picks embedded serially and on a local Dask cluster of 2 workers, same process count limits:
time ratio, and whether the files are identical.
Results are printed as JSON; docs/benchmarks.md quotes them with the machine they ran on.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHAPE = (200, 512, 512)


def cli(*args: str) -> tuple[float, float]:
    """Run the CLI in a subprocess; (wall seconds, peak resident MB of that subprocess)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "deepfinder_unsup.cli", *args, "--quiet"],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    wall = time.time() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args[:3])} failed: {proc.stderr[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(peak, before) / 1024


def make_tomograms(folder: Path, n: int) -> list[str]:
    import mrcfile

    rng = np.random.default_rng(0)
    paths = []
    for t in range(n):
        path = folder / f"tomo{t:02d}.mrc"
        if not path.exists():
            with mrcfile.new_mmap(path, shape=SHAPE, mrc_mode=2) as m:
                for z in range(0, SHAPE[0], 20):
                    m.data[z : z + 20] = rng.standard_normal((20,) + SHAPE[1:], dtype=np.float32)
                m.voxel_size = 10.0
        paths.append(str(path))
    return paths


def make_picks(path: Path, n: int, n_tomograms: int) -> None:
    from deepfinder_unsup.io import write_objl
    from deepfinder_unsup.io.objl import new_object

    rng = np.random.default_rng(n)
    hi = np.array(SHAPE[::-1]) - 1.0
    objl = [new_object(1, *rng.uniform(0, hi), tomo_idx=int(rng.integers(n_tomograms))) for _ in range(n)]
    write_objl(objl, path, overwrite=True)


def bench_memory(args, work: Path) -> dict:
    tomograms = make_tomograms(work, args.tomograms)
    rows = []
    for n in args.picks:
        make_picks(work / f"picks{n}.xml", n, args.tomograms)
        out = work / f"emb{n}.h5"
        out.unlink(missing_ok=True)
        wall, peak = cli("embed", "--objl", str(work / f"picks{n}.xml"), "--tomograms", *tomograms, "--out", str(out))
        rows.append({"picks": n, "seconds": round(wall, 1), "picks_per_s": round(n / wall, 1), "peak_mb": round(peak)})
        print(json.dumps(rows[-1]), flush=True)
    return {"memory": rows}


def bench_cluster(args, work: Path) -> dict:
    from deepfinder_unsup.io import write_embeddings
    from deepfinder_unsup.io.objl import new_object

    rng = np.random.default_rng(0)
    n = args.particles
    centres = rng.standard_normal((20, 32)) * 3
    labels = rng.integers(0, 20, n)
    emb = (centres[labels] + rng.standard_normal((n, 32))).astype(np.float32)
    objl = [new_object(int(lab) + 1, 10, 10, 10, tomo_idx=0) for lab in labels]
    slices = rng.standard_normal((n, 2, 40, 40)).astype(np.float16)
    path = work / f"cluster{n}.h5"
    write_embeddings(path, emb, objl, 10.0, 40, slices=slices, overwrite=True)
    wall, peak = cli("cluster", str(path), "--k", "2:15", "--out", str(work / f"clusters{n}"), "--overwrite")
    result = {"particles": n, "k": "2:15", "seconds": round(wall, 1), "peak_mb": round(peak)}
    print(json.dumps(result), flush=True)
    return {"cluster": result}


def bench_dask(args, work: Path) -> dict:
    from deepfinder_unsup.io import read_embeddings

    tomograms = make_tomograms(work, args.tomograms)
    make_picks(work / "picks_dask.xml", args.picks[0], args.tomograms)
    common = ["embed", "--objl", str(work / "picks_dask.xml"), "--tomograms", *tomograms, "--precision", "float32"]
    timings = {}
    for name, extra in {"serial": [], "dask_2_workers": ["--workers", "2"]}.items():
        out = work / f"dask_{name}.h5"
        out.unlink(missing_ok=True)
        timings[name] = round(cli(*common, "--out", str(out), *extra)[0], 1)
    a, oa, _ = read_embeddings(work / "dask_serial.h5")
    b, ob, _ = read_embeddings(work / "dask_dask_2_workers.h5")
    result = {
        "picks": args.picks[0],
        **timings,
        "speed_ratio": round(timings["serial"] / timings["dask_2_workers"], 2),
        "same_rows": oa == ob,
        "max_abs_difference": float(np.abs(a - b).max()),
        "cores": os.cpu_count(),
    }
    print(json.dumps(result), flush=True)
    return {"dask": result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["memory", "cluster", "dask"])
    parser.add_argument("--picks", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--tomograms", type=int, default=10)
    parser.add_argument("--particles", type=int, default=200_000)
    parser.add_argument("--work", help="folder for the synthetic data (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        result = {"memory": bench_memory, "cluster": bench_cluster, "dask": bench_dask}[args.what](args, work)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
