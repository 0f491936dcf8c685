"""Simulator throughput: sub-tomograms (40^3 at 10 Å, 41-tilt series) per second on all cores.

    python benchmarks/simulate_speed.py [--n 400] [--workers N]

Uses the 13 SHREC'21 maps of ../shared when present (else the built-in shapes), default domain randomisation
but a fixed 41-tilt series (-60..+60 by 3 degrees). Reports the steady-state rate after one warm-up pass.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from deepfinder_unsup.simulate.config import SimConfig
from deepfinder_unsup.simulate.dataset import simulate_dataset
from deepfinder_unsup.simulate.structures import load_structures

SHARED_MAPS = Path(__file__).resolve().parents[2] / "shared" / "structures" / "maps_10A"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=420)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    args = parser.parse_args()
    specs = [str(SHARED_MAPS)] if SHARED_MAPS.exists() else ["builtin"]
    structs = load_structures(specs)
    cfg = SimConfig(tilt_min=-60, tilt_max=60, tilt_step=3)
    per_class = max(1, args.n // (len(structs) + 1))
    simulate_dataset(structs, 2, cfg, seed=99, n_workers=args.workers, progress=False)  # warm-up
    t0 = time.time()
    vols, _, _ = simulate_dataset(structs, per_class, cfg, seed=1, n_workers=args.workers, progress=False)
    dt = time.time() - t0
    print(
        json.dumps(
            {
                "benchmark": "simulate",
                "n": len(vols),
                "seconds": round(dt, 2),
                "per_second": round(len(vols) / dt, 1),
                "workers": args.workers,
                "n_tilts": 41,
                "structures": specs,
                "cpu": platform.processor() or platform.machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
