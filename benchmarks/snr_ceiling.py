"""Is the features' limit the noise or the shape? The validation protocol's structures and microscope, simulated
again at other signal-to-noise ratios (``--snr``, the protocol's own being log-uniform in 0.05-0.3), scored for
models and for the pose oracle (raw voxels rotated back by the TRUE pose, PCA(32)).

    python benchmarks/snr_ceiling.py --snr 100 1 --per-class 10 --models general --cache runs/snr_ceiling
    python benchmarks/snr_ceiling.py --snr 0.12 --microscope benchmarks/configs/train_general.json --acquisitions 1 2 3

If a model separates the never-trained structures well where they are nearly noise-free and poorly at the
protocol's SNR, what it lacks is robustness to noise (the training's SNR range, denoising); if it separates them
poorly even noise-free, while the oracle does not, what it lacks is the shape and pose invariance itself. Scores
per SNR: k-means V at the true k (unit features, three seeds), a 5-fold linear probe, and the share of particles
whose nearest neighbour (cosine) is of their own structure, by mass quartile of the 200 procedural structures.
``--microscope`` swaps the protocol's microscope for another ``--config`` (the training's, say: is the gap that the
protocol's microscope lies outside the training ranges?), ``--acquisitions`` draws ONE acquisition per seed from
its ranges, as one tomogram has (without it every sub-tomogram draws its own, which no user's data set does).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from information_limit import aligned_to_template_frame
from protocol import kmeans_v, protocol_specs, unit
from separation_by_size import nearest_neighbour_same_class
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

HERE = Path(__file__).parent
PROTOCOL_MICROSCOPE = HERE / "configs" / "protocol_microscope.json"


def microscope_at_snr(snr: float, microscope: Path, acquisition: int | None):
    """The ``SimConfig`` of ``microscope`` (a ``--config`` JSON) at one SNR; with ``acquisition`` (a seed), ONE
    draw of its acquisition from its ranges (``one_acquisition``: one tomogram's microscope), else its ranges."""
    from deepfinder_unsup.simulate.config import SimConfig, one_acquisition

    config = SimConfig(**{**json.loads(microscope.read_text()), "snr": snr})
    return config if acquisition is None else one_acquisition(config, np.random.default_rng(acquisition))


def simulated_at_snr(
    snr: float,
    per_class: int,
    folder: Path,
    seed: int,
    microscope: Path = PROTOCOL_MICROSCOPE,
    acquisition: int | None = None,
) -> Path:
    """The protocol's structures at one SNR under ``microscope`` (the protocol's own by default; see
    ``microscope_at_snr``), simulated once into ``folder``."""
    stem = "protocol" if microscope == PROTOCOL_MICROSCOPE else f"protocol_{microscope.stem}"
    drawn = "" if acquisition is None else f"_acq{acquisition}"
    path = folder / f"{stem}{drawn}_snr{snr:g}_n{per_class}_s{seed}.h5"
    if path.exists():
        return path
    from deepfinder_unsup.simulate.dataset import write_simulated_dataset
    from deepfinder_unsup.simulate.structures import load_structures

    config = microscope_at_snr(snr, microscope, acquisition)
    structures = load_structures(protocol_specs(), config.voxel_size)
    folder.mkdir(parents=True, exist_ok=True)
    return write_simulated_dataset(path, structures, per_class, config, seed=seed, progress=False)


def mass_quartiles(names: dict[int, str]) -> list[tuple[tuple[int, int], list[int]]]:
    """((lowest, highest kDa), labels) of the procedural structures, by quartile of their mass."""
    from deepfinder_unsup.simulate.procedural import ProceduralStructure

    masses = {label: ProceduralStructure(int(n[4:])).molecule.mass_kda for label, n in names.items() if n[:4] == "proc"}
    edges = np.quantile(list(masses.values()), [0, 0.25, 0.5, 0.75, 1])
    return [
        ((round(lo), round(hi)), [label for label, m in masses.items() if lo <= m <= hi])
        for lo, hi in zip(edges[:-1], edges[1:])
    ]


def scores(features: np.ndarray, truth: np.ndarray, quartiles) -> dict:
    """V at the true k (mean of three k-means seeds), linear probe, nearest-neighbour purity by mass quartile."""
    x = unit(features.astype(np.float64))
    k = len(np.unique(truth))
    v = float(np.mean([kmeans_v(x, truth, k, n_init=2 + seed)[0] for seed in range(3)]))
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
    accuracy = float(cross_val_score(probe, features, truth, cv=5).mean())
    nn = nearest_neighbour_same_class(x, truth)
    by_mass = {f"{lo}-{hi} kDa": round(float(nn[np.isin(truth, labels)].mean()), 3) for (lo, hi), labels in quartiles}
    return {"v_true_k": round(v, 4), "linear_probe": round(accuracy, 4), "nn_same_by_mass": by_mass}


def model_features(model: str, volumes: np.ndarray) -> np.ndarray:
    from deepfinder_unsup._quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from deepfinder_unsup.embed import Embedder

    return Embedder(model, precision="float32", tta=False).fit().transform(volumes)  # paired_bootstrap's defaults


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--snr", type=float, nargs="+", default=[100.0, 1.0])
    parser.add_argument("--per-class", type=int, default=10)
    parser.add_argument("--seed", type=int, default=202)
    parser.add_argument("--models", nargs="+", default=["general"])
    parser.add_argument("--cache", type=Path, default=Path("runs/snr_ceiling"), help="simulated sets kept here")
    parser.add_argument(
        "--microscope",
        type=Path,
        default=PROTOCOL_MICROSCOPE,
        help="a simulate --config JSON in place of the protocol's microscope (e.g. configs/train_general.json: is "
        "the gap the microscope or the shapes?)",
    )
    parser.add_argument(
        "--acquisitions",
        type=int,
        nargs="*",
        help="seeds: per seed, ONE acquisition drawn from --microscope's ranges (as one tomogram has), in place of "
        "a new draw per sub-tomogram",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from deepfinder_unsup.io.dataset import read_dataset
    from deepfinder_unsup.simulate.config import ACQUISITION_FIELDS

    results: dict = {"per_class": args.per_class, "seed": args.seed, "microscope": str(args.microscope), "by_snr": {}}
    for snr in args.snr:
        for acquisition in args.acquisitions or [None]:
            name = f"{snr:g}" if acquisition is None else f"{snr:g} acquisition {acquisition}"
            path = simulated_at_snr(snr, args.per_class, args.cache, args.seed, args.microscope, acquisition)
            data = read_dataset(path)
            truth, quartiles = np.asarray(data.labels), mass_quartiles(data.class_names)
            oracle = PCA(32, random_state=0).fit_transform(aligned_to_template_frame(data))
            row = {"true_pose_oracle": scores(oracle, truth, quartiles)}
            if acquisition is not None:
                drawn = microscope_at_snr(snr, args.microscope, acquisition).to_dict()
                row["acquisition"] = {field: drawn[field] for field in ACQUISITION_FIELDS}
            for model in args.models:
                row[model] = scores(model_features(model, data.subtomograms), truth, quartiles)
            results["by_snr"][name] = row
            for model, r in row.items():
                if model != "acquisition":
                    print(f"SNR {name}  {model:>28}  V {r['v_true_k']:.3f}  probe {r['linear_probe']:.3f}  "
                          f"nn by mass {list(r['nn_same_by_mass'].values())}", flush=True)  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
