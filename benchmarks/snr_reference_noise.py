"""How much noise did the box's SNR give a particle, against the SNR of the particle alone? (#9, session 14)

    python benchmarks/snr_reference_noise.py --out OUT.json

For a few structures (free, membrane-bound, small, large) simulated at the default microscope and one nominal SNR,
the same box (same seed) is made with ``snr_reference: box`` and ``particle``; the ratio of their noise powers
is how many times noisier the box definition made that particle than its own signal implies (docs/simulation.md).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "structures" / "maps_10A"
CASES = {
    "1bxn": str(SHARED / "1bxn.mrc"),
    "1bxn@membrane": str(SHARED / "1bxn.mrc") + "@membrane",
    "4v94": str(SHARED / "4v94.mrc"),
    "procedural_0": "procedural:1:0",
}


def noise_power_ratios(snr: float, boxes: int) -> dict:
    """Per case: median and 10-90 % range of noise power (box reference) / noise power (particle reference)."""
    from deepfinder_unsup.simulate.config import SimConfig
    from deepfinder_unsup.simulate.scene import StructureLibrary, simulate_subtomogram
    from deepfinder_unsup.simulate.structures import load_structures

    library = StructureLibrary(load_structures(list(CASES.values()), 10.0))
    configs = [SimConfig.from_dict({"snr": snr, "snr_reference": ref}) for ref in ("box", "particle")]
    out = {}
    for label, name in enumerate(CASES, start=1):
        ratios = []
        for seed in range(boxes):
            power = []
            for cfg in configs:
                noisy, clean, _ = simulate_subtomogram(
                    library, label, cfg, np.random.default_rng(seed), return_clean=True
                )
                power.append(float((noisy - clean).var()))
            ratios.append(power[0] / power[1])
        q10, median, q90 = np.quantile(ratios, [0.1, 0.5, 0.9])
        out[name] = {"median": round(float(median), 2), "q10": round(float(q10), 2), "q90": round(float(q90), 2)}
        print(name, out[name], flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snr", type=float, default=0.2)
    parser.add_argument("--boxes", type=int, default=30)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    result = {"snr": args.snr, "boxes": args.boxes, "ratios": noise_power_ratios(args.snr, args.boxes)}
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
