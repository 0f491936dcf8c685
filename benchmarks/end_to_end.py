"""End to end on this machine: ``embed`` + ``cluster --k 2:15`` for 400 picked sub-tomograms (wall time,
start-up included), and the peak memory of ``embed`` streaming 20,000 sub-tomograms from a tomogram.

    python benchmarks/end_to_end.py [--work DIR] [--skip-memory] [--model PATH]

The 400-particle tomogram is simulated (SHREC'21 maps from ../shared, else built-in shapes). The memory run
uses a 464 x 928 x 928 noise tomogram (1.6 GB, memory-mapped) with 20,000 random picks.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHARED_MAPS = Path(__file__).resolve().parents[2] / "shared" / "structures" / "maps_10A"


def run(cmd: list[str]) -> float:
    t0 = time.time()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.time() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=None)
    parser.add_argument("--model", default=None)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-timing", action="store_true", help="only the 20,000-particle memory run")
    parser.add_argument("--precision", default="float32")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="dfu_bench_"))
    exe = [sys.executable, "-m", "deepfinder_unsup.cli"]
    model = ["--model", args.model] if args.model else []
    structures = [str(SHARED_MAPS)] if SHARED_MAPS.exists() else ["builtin"]
    results = {}
    tomo = work / "tomo400"
    if not args.skip_timing and not (tomo / "tomogram.mrc").exists():
        subprocess.run(
            exe
            + [
                "simulate-tomogram",
                "--structures",
                *structures,
                "--out",
                str(tomo),
                "--shape",
                "200",
                "512",
                "512",
                "--particles",
                "440",
                "--seed",
                "3",
            ],
            check=True,
        )
    if not args.skip_timing:
        results.update(time_400(exe, tomo, work, model, args.precision))
        print(json.dumps(results), flush=True)
    if not args.skip_memory:
        results.update(stream_memory(exe, work, model, args.precision))
    print(json.dumps(results, indent=1))


def time_400(exe, tomo, work, model, precision) -> dict:
    from deepfinder_unsup.io import read_objl, write_objl

    picks = read_objl(tomo / "objects.xml")[:400]
    write_objl(picks, work / "picks400.xml", overwrite=True)
    t_embed = run(
        exe
        + [
            "embed",
            "--tomograms",
            str(tomo / "tomogram.mrc"),
            "--objl",
            str(work / "picks400.xml"),
            "--out",
            str(work / "emb400.h5"),
            "--overwrite",
            "--border",
            "pad",
            "--precision",
            precision,
        ]
        + model
    )
    t_cluster = run(
        exe
        + ["cluster", str(work / "emb400.h5"), "--k", "2:15", "--out", str(work / "c400"), "--overwrite", "--no-report"]
    )
    t_report = run(
        exe + ["cluster", str(work / "emb400.h5"), "--k", "2:15", "--out", str(work / "c400r"), "--overwrite"]
    )
    return {
        "n_particles": len(picks),
        "precision": precision,
        "embed_s": round(t_embed, 1),
        "cluster_s": round(t_cluster, 1),
        "embed_plus_cluster_s": round(t_embed + t_cluster, 1),
        "cluster_with_report_s": round(t_report, 1),
    }


def stream_memory(exe, work, model, precision) -> dict:
    """Peak resident memory of ``embed`` on 20,000 picks in a 464 x 928 x 928 memory-mapped tomogram."""
    import mrcfile

    from deepfinder_unsup.io import write_objl
    from deepfinder_unsup.io.objl import new_object

    big = work / "big.mrc"
    shape = (464, 928, 928)
    if not big.exists():
        with mrcfile.new_mmap(big, shape=shape, mrc_mode=2) as m:
            rng = np.random.default_rng(0)
            for z in range(shape[0]):
                m.data[z] = rng.standard_normal(shape[1:], dtype=np.float32)
            m.voxel_size = 10.0
    rng = np.random.default_rng(1)
    objl = [new_object(1, *rng.uniform(21, 900, 2), rng.uniform(21, 440), tomo_idx=0) for _ in range(20000)]
    write_objl(objl, work / "picks20k.xml", overwrite=True)
    t0 = time.time()
    proc = subprocess.Popen(
        exe
        + [
            "embed",
            "--tomograms",
            str(big),
            "--objl",
            str(work / "picks20k.xml"),
            "--out",
            str(work / "emb20k.h5"),
            "--overwrite",
            "--precision",
            precision,
        ]
        + model,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    if status:
        raise RuntimeError("embed failed in the memory benchmark")
    return {"stream_20000_s": round(time.time() - t0, 1), "stream_20000_peak_rss_gb": round(usage.ru_maxrss / 1e6, 2)}


if __name__ == "__main__":
    main()
