"""Per-cluster averages against the true maps (issue #10).

    python benchmarks/averages.py [--per-class 100] [--snr 0.2] [--structures 1bxn 1qvr 3cf3 4cr2 5mrc 1u6g]

Six SHREC'21 structures from ../shared/structures/maps_10A, ``--per-class`` sub-tomograms each, simulated at
10 Å with one microscope (±60 degree tilt, 3 µm defocus, SNR ``--snr``, no neighbours), grouped by their true
class (a perfect clustering: this measures the averaging alone), averaged reference-free from a sphere
(``deepfinder_unsup.average.subtomogram_average``, default parameters). Per structure: the correlation of the
average with the true map (after aligning it onto the map: 2,000 rotations and shifts), the same for the
unaligned mean of the particles (what no alignment gives), the half-set FSC resolution (corrected for what the
half maps' alignment adds, and as measured before that correction) and the time; and the total time of the six
on this machine's cores. A seventh "cluster" of ``--per-class`` negatives (the same microscope, no particle: what
a junk cluster gives) shows what the FSC says of no common structure.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "structures" / "maps_10A"


def correlation_with(volume: np.ndarray, true_map: np.ndarray) -> float:
    from deepfinder_unsup.average import align, back_rotated, fourier_bin, rotation_grid, spherical_mask

    grid = rotation_grid(2000)
    box = volume.shape[0]
    ft = np.fft.rfftn(fourier_bin(volume[None], 2), axes=(-3, -2, -1))
    r, s, _ = align(ft, fourier_bin(true_map[None], 2)[0], grid, 1.0, 4)
    aligned = back_rotated(volume, grid[int(r[0])], s[0] * 2)
    mask = spherical_mask(box, 0.4 * box)
    return float(np.corrcoef((aligned * mask).ravel(), (true_map * mask).ravel())[0, 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--snr", type=float, default=0.2)
    parser.add_argument("--structures", nargs="+", default=["1bxn", "1qvr", "3cf3", "4cr2", "5mrc", "1u6g"])
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()
    from deepfinder_unsup.average import resolution_at, subtomogram_average
    from deepfinder_unsup.simulate.config import fixed_config
    from deepfinder_unsup.simulate.dataset import simulate_dataset
    from deepfinder_unsup.simulate.structures import load_structures
    from deepfinder_unsup.volume import crop_or_pad

    structs = load_structures([str(SHARED / f"{name}.mrc") for name in args.structures], 10.0)
    cfg = fixed_config(snr=args.snr, negative_class=True)
    t0 = time.time()
    vols, objl, names = simulate_dataset(structs, args.per_class, cfg, seed=5, progress=False)
    results: dict = {"simulated_seconds": round(time.time() - t0, 1), "cores": os.cpu_count(), "rows": []}
    labels = np.array([o["label"] for o in objl])
    total = 0.0
    for label in range(len(structs) + 1):
        members = vols[labels == label]
        t0 = time.time()
        res = subtomogram_average(members, 10.0)
        seconds = time.time() - t0
        row: dict = {"structure": names[label], "particles": int(len(members))}
        if label:  # a structure: how close its average is to its map
            struct = structs[label - 1]
            true_map = -crop_or_pad(struct.density.astype(np.float32), vols.shape[-1])  # protein dark, as simulated
            row["cc_average_vs_true_map"] = round(correlation_with(res.average, true_map), 3)
            row["cc_unaligned_mean_vs_true_map"] = round(correlation_with(members.mean(axis=0), true_map), 3)
            total += seconds
        row |= {
            "resolution_A_fsc_0143": round(res.resolution, 1),
            "resolution_A_fsc_0143_uncorrected": round(resolution_at(res.fsc_measured, 10.0, vols.shape[-1]), 1),
            "mean_fsc_shells_1_8": round(float(res.fsc[1:9].mean()), 3),
            "mean_fsc_null_shells_1_8": round(float(res.fsc_null[1:9].mean()), 3),
            "seconds": round(seconds, 1),
        }
        results["rows"].append(row)
        print(json.dumps(row), flush=True)
    results["total_seconds"] = round(total, 1)
    print(json.dumps(results, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
