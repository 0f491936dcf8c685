"""int8 inference on CPU with OpenVINO (``pip install 'deepfinder-unsup[fast]'``; ``--precision int8``).

The embedding network is exported from Keras (TensorFlow SavedModel), converted by OpenVINO and quantised by
NNCF (post-training, 8-bit weights and activations), calibrated on sub-tomograms simulated at the model's box
and voxel size from shapes made by code (built-in shapes and procedural pseudo-molecules, the simulator's
default microscope: no data files needed). Each activation's range is the extreme over all calibration
sub-tomograms (NNCF's ``MINMAX``), not NNCF's default mean of each sub-tomogram's extremes, which clips the
sub-tomograms of highest contrast (a large complex: a tenth of SHREC'21-like picks fell below a cosine of 0.95
to fp32, 1 % below 0.75, and the clustering lost 0.028 V; docs/benchmarks.md "Precision"). The quantised model
is cached per model file (keyed by its SHA-256) under ``$XDG_CACHE_HOME/deepfinder-unsup`` (default
``~/.cache``), so quantisation (about a minute) runs once.

Kept only where it holds the accuracy gate (docs/benchmarks.md: k-means V-measure within 0.01 of fp32 on the
validation protocol and the SHREC'21 structures); the median cosine of the embeddings to fp32's is 0.9997.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .io.files import InputError
from .log import logger

CALIBRATION_SIZE = 300  # simulated sub-tomograms for NNCF's statistics
CALIBRATION_STRUCTURES = ("builtin", "procedural:24:3000000")  # seeds outside training, protocol and monitor
ACTIVATION_RANGES = "MINMAX"  # NNCF's range estimator for activations (part of the cache key)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "deepfinder-unsup"


def _require_openvino():
    try:
        import nncf
        import openvino as ov
    except ImportError:
        raise InputError("--precision int8 needs OpenVINO and NNCF: pip install 'deepfinder-unsup[fast]'") from None
    return ov, nncf


def calibration_volumes(box_size: int, voxel_size: float, n: int, seed: int = 0) -> np.ndarray:
    """Normalised simulated sub-tomograms (n, B, B, B, 1) for quantisation statistics."""
    from .simulate.config import SimConfig
    from .simulate.dataset import simulate_dataset
    from .simulate.structures import load_structures
    from .volume import normalise

    config = SimConfig(box_size=box_size, voxel_size=voxel_size)
    structures = load_structures(list(CALIBRATION_STRUCTURES), voxel_size)
    per_class = max(1, -(-n // (len(structures) + 1)))
    vols, _, _ = simulate_dataset(structures, per_class, config, seed=seed, n_workers=1, progress=False)
    return normalise(vols[:n])[..., None].astype(np.float32)


def quantised_model_path(model_path: Path, keras_embedding, card: dict) -> Path:
    """The cached int8 OpenVINO model of ``model_path`` (made on first use)."""
    ov, nncf = _require_openvino()
    digest = hashlib.sha256(Path(model_path).read_bytes()).hexdigest()[:16]
    target = cache_dir() / f"{digest}-int8-c{CALIBRATION_SIZE}-{ACTIVATION_RANGES.lower()}.xml"
    if target.exists() and target.with_suffix(".bin").exists():
        return target
    logger.info(f"quantising {model_path} to int8 (once; cached in {target.parent})")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        keras_embedding.export(str(Path(tmp) / "saved"), format="tf_saved_model", verbose=False)
        fp32 = ov.convert_model(str(Path(tmp) / "saved"))
        calib = calibration_volumes(int(card["box_size"]), float(card["voxel_size"]), CALIBRATION_SIZE)
        dataset = nncf.Dataset([calib[i : i + 1] for i in range(len(calib))])
        int8 = nncf.quantize(
            fp32,
            dataset,
            subset_size=len(calib),
            preset=nncf.QuantizationPreset.PERFORMANCE,
            advanced_parameters=_activation_ranges(),
        )
        staged = Path(tmp) / target.name
        ov.save_model(int8, str(staged))
        os.replace(staged.with_suffix(".bin"), target.with_suffix(".bin"))
        os.replace(staged, target)  # the .xml last: it marks the pair complete
    return target


def _activation_ranges():
    """NNCF's advanced parameters that take each activation's range from all calibration samples' extremes."""
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    return AdvancedQuantizationParameters(
        activations_range_estimator_params=getattr(RangeEstimatorParametersSet, ACTIVATION_RANGES)
    )


def int8_embedding_function(model_path: Path, keras_embedding, card: dict) -> Callable[[np.ndarray], np.ndarray]:
    """A callable x (b, B, B, B, 1) float32 -> embeddings (b, D) float32 running the int8 model on the CPU."""
    ov, _ = _require_openvino()
    compiled = ov.Core().compile_model(str(quantised_model_path(model_path, keras_embedding, card)), "CPU")

    def run(x):
        return np.asarray(compiled(np.asarray(x, np.float32))[0], np.float32)

    return run
