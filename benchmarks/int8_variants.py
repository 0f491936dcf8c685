"""Which int8 quantisation keeps the clustering? Variants of NNCF's post-training quantisation, each scored
against the same model in float32 by the paired bootstrap (``paired_bootstrap.paired_differences``).

Session 22 found ``--precision int8`` (NNCF PERFORMANCE preset, every layer in int8, 300 calibration
sub-tomograms made by code) costs about 0.03 V on SHREC'21-like sub-tomograms. The variants here keep
parts of the network in float32 (OpenVINO's ``MatMul``: the head's Dense layers, a small share of the work),
calibrate on more sub-tomograms, or set the activations' ranges another way. Each variant's embedding pass is
timed against float32 in the same run (a ratio: the machine may be shared).

    python benchmarks/int8_variants.py --model general --data runs/val_shrec21_big/dataset.h5 \
        --variants performance float_head float_head_c1000 --resamples 100 --out OUT.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

VARIANTS = {
    # name: (calibration size, OpenVINO operation types left in float32, activation range estimator)
    "performance": (300, (), "MEAN_MINMAX"),
    "float_head": (300, ("MatMul",), "MEAN_MINMAX"),
    "float_head_c1000": (1000, ("MatMul",), "MEAN_MINMAX"),
    "c1000": (1000, (), "MEAN_MINMAX"),
    "minmax": (300, (), "MINMAX"),
    "minmax_c1000": (1000, (), "MINMAX"),
    "histogram": (300, (), "HISTOGRAM"),
}


def quantise(keras_embedding, card: dict, calibration: int, float_types: tuple[str, ...], ranges: str, workdir: Path):
    """A compiled OpenVINO int8 model of ``keras_embedding`` with ``float_types`` kept in float32 and the
    activations' ranges from NNCF's estimator ``ranges`` (its default, MEAN_MINMAX, averages each sample's
    extremes, so the samples of highest contrast are clipped; MINMAX takes the extremes of all)."""
    import nncf
    import openvino as ov
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    from deepfinder_unsup.int8 import calibration_volumes

    saved = workdir / f"saved_{calibration}_{'_'.join(float_types) or 'all'}_{ranges}"
    keras_embedding.export(str(saved), format="tf_saved_model", verbose=False)
    fp32 = ov.convert_model(str(saved))
    calib = calibration_volumes(int(card["box_size"]), float(card["voxel_size"]), calibration)
    dataset = nncf.Dataset([calib[i : i + 1] for i in range(len(calib))])
    ignored = nncf.IgnoredScope(types=list(float_types)) if float_types else None
    kwargs: dict = {"ignored_scope": ignored} if ignored else {}
    kwargs["advanced_parameters"] = AdvancedQuantizationParameters(
        activations_range_estimator_params=getattr(RangeEstimatorParametersSet, ranges)
    )
    model = nncf.quantize(fp32, dataset, subset_size=len(calib), preset=nncf.QuantizationPreset.PERFORMANCE, **kwargs)
    return ov.Core().compile_model(model, "CPU")


def embed_with(compiled, volumes: np.ndarray, batch: int = 32) -> tuple[np.ndarray, float]:
    """Embeddings of normalised ``volumes`` (N, B, B, B) and the seconds the pass took."""
    t0 = time.perf_counter()
    out = [
        np.asarray(compiled(volumes[i : i + batch, ..., None])[0], np.float32) for i in range(0, len(volumes), batch)
    ]
    return np.concatenate(out), time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="general")
    parser.add_argument("--data", required=True, help="a labelled data set (simulate's dataset.h5)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--resamples", type=int, default=100)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    from deepfinder_unsup._quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from paired_bootstrap import paired_differences

    from deepfinder_unsup.cluster import normalise_features
    from deepfinder_unsup.embed import Embedder, resolve_model_path
    from deepfinder_unsup.io.dataset import read_dataset
    from deepfinder_unsup.model.card import load_model
    from deepfinder_unsup.model.classifier import embedding_model
    from deepfinder_unsup.volume import normalise

    data = read_dataset(args.data)
    truth = np.asarray(data.labels)
    volumes = normalise(np.asarray(data.subtomograms)).astype(np.float32)
    t0 = time.perf_counter()
    reference = Embedder(args.model, precision="float32", progress=False, tta=False).fit().transform(data.subtomograms)
    float_seconds = time.perf_counter() - t0
    model, card = load_model(resolve_model_path(args.model))
    keras_embedding = embedding_model(model)
    results: dict = {"model": args.model, "data": args.data, "float32_seconds": round(float_seconds, 1), "variants": {}}
    a = normalise_features(reference.astype(np.float64))
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.variants:
            calibration, float_types, ranges = VARIANTS[name]
            compiled = quantise(keras_embedding, card, calibration, float_types, ranges, Path(tmp))
            features, seconds = embed_with(compiled, volumes)
            cosine = np.sum(features * reference, 1) / (
                np.linalg.norm(features, axis=1) * np.linalg.norm(reference, axis=1) + 1e-12
            )
            b = normalise_features(features.astype(np.float64))
            results["variants"][name] = {
                "calibration": calibration,
                "float_types": list(float_types),
                "activation_ranges": ranges,
                "seconds": round(seconds, 1),
                "speed_vs_float32": round(float_seconds / seconds, 2),
                "median_cosine_to_float32": round(float(np.median(cosine)), 4),
                **paired_differences(a, b, truth, args.resamples),
            }
            print(name, results["variants"][name], flush=True)
            Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
