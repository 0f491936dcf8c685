"""Does filtering the user's picks to the training data's radial power spectrum help k-means? (issue #13)

    python benchmarks/spectrum_matching.py --model general \
        --design runs/rare/dataset.h5 runs/val_shrec21/dataset.h5 runs/monitor/dataset.h5 --domains \
        --out spectrum_matching.json

Input matching the other way round: instead of simulating around the user's microscope (``adapt --method
like``), bring the user's boxes to the training distribution's spectrum, with no training at all. The picks'
mean radial power spectrum P_user(|k|) (Hann window, shells of one voxel^-1) is estimated on all picks (no
labels); the training distribution's P_train from 320 boxes simulated with the training configuration
(``configs/train_general.json``: code-made structures, every microscope range, seed 0). Each normalised box is
multiplied in Fourier space by g(|k|) = (P_train / P_user)^(strength / 2), g clipped to within ``clip`` times its
median, then normalised again. Variants: strength 0.5 or 1, clip 3 or 10 (and none: the input). Embedded and
scored like ``feature_normalisation.py`` (k-means on unit features, 4 starts: V at the true k, best V over
k = 2 .. 2 x true k). Chosen on the design sets, scored unchanged on the four domains.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
VARIANTS = ((0.5, 3.0), (0.5, 10.0), (1.0, 3.0), (1.0, 10.0))  # (strength, clip), and the input as it is
REFERENCE_BOXES = 320


def shell_index(n: int) -> np.ndarray:
    """Each voxel's frequency shell (round(|k| n), unshifted FFT layout), capped at the Nyquist shell n // 2."""
    f = np.fft.fftfreq(n)
    kz, ky, kx = np.meshgrid(f, f, f, indexing="ij")
    return np.minimum(np.round(np.sqrt(kx**2 + ky**2 + kz**2) * n).astype(int), n // 2)


def radial_power(volumes: np.ndarray) -> np.ndarray:
    """Mean power per shell 0 .. n // 2 of the normalised, Hann-windowed boxes."""
    from deepfinder_unsup.simulate.like import mean_power_spectrum

    n = volumes.shape[1]
    power = np.fft.ifftshift(mean_power_spectrum(volumes))  # back to the unshifted layout of shell_index
    shells = shell_index(n)
    return np.bincount(shells.ravel(), power.ravel()) / np.bincount(shells.ravel())


def training_reference(box: int, seed: int = 0) -> np.ndarray:
    """P_train: the radial power of ``REFERENCE_BOXES`` boxes simulated as the training runs draw them."""
    from deepfinder_unsup.simulate.config import SimConfig
    from deepfinder_unsup.simulate.keras_source import SimulatedBatches
    from deepfinder_unsup.simulate.structures import load_structures

    config = SimConfig.from_file(HERE / "configs" / "train_general.json")
    assert config.box_size == box, (config.box_size, box)
    source = SimulatedBatches(load_structures(["procedural:200:0"], config.voxel_size), config, 32, seed=seed)
    boxes = np.concatenate([source[i][0][..., 0] for i in range(REFERENCE_BOXES // 32)])
    return radial_power(boxes)


def matched(volumes: np.ndarray, reference: np.ndarray, strength: float, clip: float) -> np.ndarray:
    """The boxes filtered so their mean radial power moves towards ``reference`` (see the module's text)."""
    from deepfinder_unsup.volume import normalise

    gain = np.sqrt(reference / np.maximum(radial_power(volumes), 1e-30)) ** strength
    median = np.median(gain[1:])
    gain = np.clip(gain, median / clip, median * clip)
    gain[0] = 1.0
    filt = gain[shell_index(volumes.shape[1])]
    x = np.fft.ifftn(np.fft.fftn(normalise(volumes), axes=(1, 2, 3)) * filt, axes=(1, 2, 3)).real
    return normalise(x.astype(np.float32))


def main() -> None:
    from context_mask import run_input_study

    references: dict[int, np.ndarray] = {}  # per box size, simulated once

    def reference(box: int) -> np.ndarray:
        if box not in references:
            references[box] = training_reference(box)
        return references[box]

    def variant(strength: float, clip: float):
        return lambda volumes, _: matched(volumes, reference(volumes.shape[1]), strength, clip)

    variants = {"none": None, **{f"strength{s}_clip{c:g}": variant(s, c) for s, c in VARIANTS}}
    run_input_study(__doc__.splitlines()[0], variants)


if __name__ == "__main__":
    main()
