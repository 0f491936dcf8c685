"""Figure of docs/simulation.md: central xy and xz slices per class, noise-free and noisy.

    python docs/make_simulation_figure.py [--out docs/figures/simulation_slices.png]

Uses the SHREC'21 maps of ../shared when present (else the built-in shapes), a fixed microscope
(-60..+60 by 3 degrees, 3 µm defocus, 300 kV) and SNR 0.1, seed 0.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from deepfinder_unsup.simulate.config import fixed_config  # noqa: E402
from deepfinder_unsup.simulate.scene import StructureLibrary, simulate_subtomogram  # noqa: E402
from deepfinder_unsup.simulate.structures import load_structures  # noqa: E402

SHARED_MAPS = Path(__file__).resolve().parents[2] / "shared" / "structures" / "maps_10A"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "figures" / "simulation_slices.png"))
    args = parser.parse_args()
    structs = load_structures([str(SHARED_MAPS)] if SHARED_MAPS.exists() else ["builtin"])
    lib = StructureLibrary(structs)
    cfg = fixed_config(snr=0.1, n_neighbours=1)
    labels = list(range(1, len(structs) + 1)) + [0]
    fig, axes = plt.subplots(4, len(labels), figsize=(1.1 * len(labels), 4.8))
    for j, label in enumerate(labels):
        rng = np.random.default_rng(label)
        noisy, clean, _ = simulate_subtomogram(lib, label, cfg, rng, return_clean=True)
        c = noisy.shape[0] // 2
        for i, img in enumerate([clean[c], clean[:, c, :], noisy[c], noisy[:, c, :]]):
            axes[i, j].imshow(img, cmap="gray")
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
        axes[0, j].set_title(structs[label - 1].name if label else "negative", fontsize=7)
    for i, name in enumerate(["clean xy", "clean xz", "noisy xy", "noisy xz"]):
        axes[i, 0].set_ylabel(name, fontsize=7)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110, bbox_inches="tight")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
