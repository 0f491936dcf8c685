"""What one training sub-tomogram costs to simulate, in the configuration the shipped model trains on.

    python benchmarks/training_batches_speed.py [--batches 3] [--repeats 3] [--fft-ab] [--out OUT.json]

``--fft-ab`` is a study kept for the record: session 24 measured numpy.fft / scipy.fft at 1.012 per sample (the
FFTs are about a tenth of the cost), so the simulator keeps numpy.fft.

``SimulatedBatches`` (what ``train --structures`` draws from) on the 595 training specs
(benchmarks/configs/structures_595.sh), ``--sim-config benchmarks/configs/train_general_snr_particle2.json``,
``--map-weight 8``, paired draws for the contrastive loss, batch 32, one process. Seconds per sub-tomogram on
one core, to set against the training step's (``benchmarks/embed_speed.py --batches --train-freeze 0 4``):
where the simulation costs more, training waits on it and freezing layers buys nothing. ``--fft-ab``
alternates the simulator's FFTs between numpy.fft (the package's) and scipy.fft, the same batches each, so
the ratio holds whatever else the machine runs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

import numpy as np
from scipy import fft as scipy_fft

from deepfinder_unsup import volume
from deepfinder_unsup.simulate import microscope, scene
from deepfinder_unsup.simulate.config import SimConfig
from deepfinder_unsup.simulate.keras_source import SimulatedBatches
from deepfinder_unsup.simulate.structures import load_structures

ROOT = Path(__file__).resolve().parents[1]
FFT_USERS = (microscope, scene, volume)  # modules whose ``np.fft`` the study swaps


class _NumpyWithFFT:
    """``numpy`` with another ``fft`` namespace: what a simulator module sees as ``np`` during the study."""

    def __init__(self, fft_module):
        self.fft = fft_module

    def __getattr__(self, name):
        return getattr(np, name)


def training_specs() -> list[str]:
    script = f"source {ROOT / 'benchmarks/configs/structures_595.sh'}; printf '%s\\n' \"${{STRUCTURES_595[@]}}\""
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True, cwd=ROOT).stdout.split()


def seconds_per_subtomogram(source: SimulatedBatches, seed: int) -> float:
    source.library._cache.clear()  # the same seeds in every setting: none may find what another's draws cached
    microscope._radon_block.cache_clear()
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    x, _ = source.make_batch(rng)
    return (time.perf_counter() - t0) / len(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=3, help="batches of 32 per setting and repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fft-ab", action="store_true", help="alternate scipy.fft and numpy.fft")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    config = SimConfig.from_file(ROOT / "benchmarks/configs/train_general_snr_particle2.json")
    source = SimulatedBatches(load_structures(training_specs(), config.voxel_size), config, 32, map_weight=8)
    source.instance_pairs = True
    source.make_batch(np.random.default_rng(12345))  # warm-up: caches
    settings = {"numpy.fft": np.fft, "scipy.fft": scipy_fft} if args.fft_ab else {"numpy.fft": np.fft}
    seconds: dict[str, list[float]] = {name: [] for name in settings}
    for repeat in range(args.repeats):
        order = list(settings.items())
        for name, module in order if repeat % 2 == 0 else order[::-1]:
            for user in FFT_USERS:
                user.np = _NumpyWithFFT(module)  # type: ignore[attr-defined]
            seconds[name] += [seconds_per_subtomogram(source, 1000 * repeat + b) for b in range(args.batches)]
    for user in FFT_USERS:
        user.np = np  # type: ignore[attr-defined]
    result = {
        "seconds_per_subtomogram": {name: round(float(np.mean(s)), 4) for name, s in seconds.items()},
        "batches": args.batches * args.repeats,
        "date": time.strftime("%Y-%m-%d"),
    }
    if args.fft_ab:
        result["numpy_over_scipy"] = round(float(np.mean(seconds["numpy.fft"]) / np.mean(seconds["scipy.fft"])), 3)
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
