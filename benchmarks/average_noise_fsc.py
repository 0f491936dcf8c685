"""What the half-set FSC of ``average`` says of clusters with no common structure (session 47).

    python benchmarks/average_noise_fsc.py --out OUT.json [--particles 60] [--box 32] [--voxel-size 13.68]

White-noise "particles" (no structure at all) averaged with the default parameters, three seeds: the resolution
where the FSC between the aligned half maps crosses 0.143 as measured, and after the correction for what that
alignment alone gives (``average.corrected_fsc``, the phase-randomised null). Without structure the honest answer
is the coarsest shells; the uncorrected curve reads shells the half maps share only through their alignment.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--particles", type=int, default=60)
    parser.add_argument("--box", type=int, default=32)
    parser.add_argument("--voxel-size", type=float, default=13.68)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    from deepfinder_unsup.average import resolution_at, subtomogram_average

    rows = []
    for seed in range(args.seeds):
        noise = np.random.default_rng(seed).standard_normal((args.particles, *(args.box,) * 3)).astype(np.float32)
        t0 = time.time()
        res = subtomogram_average(noise, args.voxel_size, seed=seed)
        rows.append(
            {
                "seed": seed,
                "resolution_A_uncorrected": round(resolution_at(res.fsc_measured, args.voxel_size, args.box), 1),
                "resolution_A_corrected": round(res.resolution, 1),
                "fsc_measured_shells_1_8": [round(float(v), 3) for v in res.fsc_measured[1:9]],
                "fsc_null_shells_1_8": [round(float(v), 3) for v in res.fsc_null[1:9]],
                "fsc_corrected_shells_1_8": [round(float(v), 3) for v in res.fsc[1:9]],
                "seconds": round(time.time() - t0, 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    Path(args.out).write_text(json.dumps({"settings": vars(args), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
