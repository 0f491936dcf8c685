"""Does the model see the membrane? The protocol's bound/free pair read three ways (#9)

    python benchmarks/binding_readout.py --models general [runs/X/model.keras ...] --out OUT.json
    python benchmarks/binding_readout.py --simulate benchmarks/configs/train_general.json \
        --structure ../shared/structures/maps_10A/4cr2.mrc --out OUT.json


The protocol scores the membrane-bound vs free copies of a held-out structure (``protocol.BOUND_PAIR``) by k-means
at k = 2 on the features. This says why a model scores what it does: the same 2-means V, a 5-fold logistic
probe on the 32-D features (is the difference in them at all?), and the model's own binding output (trained
since session 5: free / membrane surface / transmembrane), how many of each class it calls what.
``--simulate CONFIG --structure MAP [MAP ...]`` reads a pair simulated afresh instead (MAP free and ``MAP@membrane``,
20 each, at the microscope of CONFIG), one pair per map and the mean over them: is the membrane missed at any
microscope, or only at the protocol's, and for one held-out structure or for several?
``--by-visibility`` (with ``--simulate``) splits the bound copies by whether their tilt series sampled the
membrane at all (``microscope.sampled_by_tilts``: a normal in the missing wedge leaves no membrane to see):
the binding output's calls on free, bound-seen and bound-hidden boxes, the probe on free vs bound-seen, the 2-means
V on free vs all bound (the protocol's score) and its ceiling: the V of features that see exactly the membranes
the tilt series sampled (:func:`visibility_ceiling`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import protocol


def model_outputs(
    model: str, volumes: np.ndarray, layers: tuple[str, ...] = ()
) -> tuple[np.ndarray, np.ndarray | None, list[np.ndarray]]:
    """The model's 32-D features, its binding output's calls (None without one) and each named layer's output."""
    import keras

    from deepfinder_unsup.embed import resolve_model_path
    from deepfinder_unsup.model.card import load_model
    from deepfinder_unsup.model.classifier import BINDING_LAYER, EMBEDDING_LAYER

    classifier, _ = load_model(resolve_model_path(model))
    outputs = [classifier.get_layer(EMBEDDING_LAYER).output]
    has_binding = any(layer.name == BINDING_LAYER for layer in classifier.layers)
    if has_binding:
        outputs.append(classifier.get_layer(BINDING_LAYER).output)
    outputs += [classifier.get_layer(name).output for name in layers]
    result = keras.Model(classifier.inputs, outputs).predict(volumes[..., None], verbose=0, batch_size=16)
    result = result if isinstance(result, list) else [result]
    calls = np.asarray(result[1]).argmax(axis=1) if has_binding else None
    return np.asarray(result[0], np.float64), calls, [np.asarray(r) for r in result[1 + has_binding :]]


def score_outputs(
    outputs: tuple[np.ndarray, np.ndarray | None, list[np.ndarray]],
    truth: np.ndarray,
    names: dict[int, str],
    layers: tuple[str, ...] = (),
    probe: bool = True,
) -> dict:
    """2-means V, probe accuracy (unless not ``probe``) and the binding output's calls per class of the pair; with
    ``layers``, the same probe (C = 0.1) on each named layer's output, flattened (where in the network the membrane
    is lost)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from deepfinder_unsup.model.classifier import BINDING_STATES

    features, calls, per_layer = outputs
    out: dict = {
        "n": int(len(truth)),
        "v_kmeans_k2": round(protocol.kmeans_v(protocol.unit(features), truth, 2, n_init=10)[0], 4),
    }
    if probe:
        logistic = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        out["probe_accuracy"] = round(float(cross_val_score(logistic, features, truth, cv=5).mean()), 4)
    if calls is not None:
        out["binding_calls"] = {
            names[int(c)]: {s: int(np.sum(calls[truth == c] == i)) for i, s in enumerate(BINDING_STATES)}
            for c in np.unique(truth)
        }
    for name, values in zip(layers, per_layer):
        regularised = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, C=0.1))
        flat = np.asarray(values, np.float64).reshape(len(truth), -1)
        out.setdefault("layer_probes", {})[name] = round(
            float(cross_val_score(regularised, flat, truth, cv=5).mean()), 4
        )
    return out


def rows_of(
    outputs: tuple[np.ndarray, np.ndarray | None, list[np.ndarray]], keep: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None, list[np.ndarray]]:
    """The model outputs of the sub-tomograms ``keep`` selects."""
    features, calls, per_layer = outputs
    return features[keep], None if calls is None else calls[keep], [values[keep] for values in per_layer]


def simulated_pair(structure: str, config: str, seed: int, per_class: int = 20):
    """``structure`` free and bound to a bilayer, ``per_class`` each, simulated at the microscope of ``config``."""
    from deepfinder_unsup.simulate.config import SimConfig
    from deepfinder_unsup.simulate.dataset import simulate_dataset
    from deepfinder_unsup.simulate.structures import load_structures

    sim = SimConfig.from_file(config)
    structs = load_structures([structure, structure + "@membrane"], sim.voxel_size)
    volumes, objl, names = simulate_dataset(structs, per_class, sim, seed=seed, n_workers=1, progress=False)
    labels = np.array([o["label"] for o in objl])
    keep = labels > 0  # the pair only, without the negatives
    return volumes[keep], labels[keep], names


def simulated_pair_by_visibility(structure: str, config: str, seed: int, per_class: int = 20):
    """As :func:`simulated_pair`, drawn box by box so that each bound copy's membrane normal is known: labels 1
    free, 2 bound with the membrane sampled by the tilt series, 3 bound with it in the missing wedge."""
    from deepfinder_unsup.simulate.config import SimConfig
    from deepfinder_unsup.simulate.microscope import sampled_by_tilts
    from deepfinder_unsup.simulate.scene import StructureLibrary, simulate_subtomogram
    from deepfinder_unsup.simulate.structures import load_structures

    sim = SimConfig.from_file(config)
    library = StructureLibrary(load_structures([structure, structure + "@membrane"], sim.voxel_size))
    rng = np.random.default_rng(seed)
    volumes, labels = [], []
    for label in (1, 2):
        for _ in range(per_class):
            volume, info = simulate_subtomogram(library, label, sim, rng)
            normal = info.membrane_normal_xyz
            seen = normal is not None and sampled_by_tilts(normal, info.params["tilt_min"], info.params["tilt_max"])
            volumes.append(volume)
            labels.append(1 if label == 1 else (2 if seen else 3))
    free = library.names[0]
    names = {1: free, 2: f"{free}@membrane seen", 3: f"{free}@membrane in the wedge"}
    return np.stack(volumes), np.array(labels), names


def pair_volumes(args, structure: str) -> tuple[np.ndarray, np.ndarray, dict, dict]:
    """The pair to read for ``structure``: simulated (``--simulate``, by visibility or not) or the protocol's."""
    from deepfinder_unsup.io.dataset import read_dataset

    if args.simulate and args.by_visibility:
        volumes, labels, names = simulated_pair_by_visibility(structure, args.simulate, args.seed, args.per_class)
        about = {"simulated": args.simulate, "structure": structure, "seed": args.seed, "by_visibility": True}
        about["counts"] = {names[c]: int(np.sum(labels == c)) for c in (1, 2, 3)}
        about["v_ceiling_membranes_seen"] = visibility_ceiling(labels)
    elif args.simulate:
        volumes, labels, names = simulated_pair(structure, args.simulate, args.seed, args.per_class)
        about = {"simulated": args.simulate, "structure": structure, "seed": args.seed}
    else:
        data = read_dataset(args.data)
        by_name = {v: k for k, v in data.class_names.items()}
        keep = np.isin(data.labels, [by_name[n] for n in protocol.BOUND_PAIR])
        volumes, labels, names = data.subtomograms[keep], data.labels[keep], data.class_names
        about = {"data": args.data, "pair": list(protocol.BOUND_PAIR)}
    return volumes, labels, names, about


def read_pair(args, model: str, volumes: np.ndarray, labels: np.ndarray, names: dict) -> dict:
    """One model's readout of one pair, the model run once (by visibility: V and probe of free against the bound
    copies seen, the 2-means V of free against ALL bound copies as the protocol scores it, the calls on all three)."""
    layers = tuple(args.layers)
    outputs = model_outputs(model, volumes, layers)
    if not args.by_visibility:
        return score_outputs(outputs, labels, names, layers)
    seen = labels < 3
    every = score_outputs(outputs, np.minimum(labels, 2), names, probe=False)
    result = {
        **score_outputs(rows_of(outputs, seen), labels[seen], names, layers),
        "v_kmeans_k2_all_bound": every["v_kmeans_k2"],
    }
    if outputs[1] is not None:  # a model without a binding output makes no calls
        result["binding_calls"] = score_outputs(outputs, labels, names, probe=False)["binding_calls"]
    return result


def visibility_ceiling(labels: np.ndarray) -> float:
    """The V of free against all bound copies (the protocol's score) for features that see exactly the membranes
    the tilt series sampled: the bound copies in the wedge grouped with the free ones, the rest apart. A ceiling
    up to what a membrane in the wedge still shows: a flat one almost nothing, a curved one some contrast (one of
    session 58's eight pairs scored 0.486 against its 0.421)."""
    from sklearn.metrics import v_measure_score

    return round(float(v_measure_score(np.minimum(labels, 2), labels == 2)), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["general"])
    parser.add_argument("--data", default=str(Path(__file__).parent / "data" / "protocol.h5"))
    parser.add_argument("--simulate", help="a microscope config (JSON): simulate the pair instead of --data")
    parser.add_argument(
        "--structure",
        nargs="+",
        default=[str(protocol.SHARED / protocol.HELD_OUT_REAL[-1])],
        help="with --simulate: one pair per map (several: each read, then the mean over them per model)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--per-class", type=int, default=20, help="with --simulate")
    parser.add_argument("--layers", nargs="*", default=[], help="also probe these layers (e.g. head_relu embedding)")
    parser.add_argument("--by-visibility", action="store_true", help="with --simulate: split bound by membrane seen")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    from deepfinder_unsup.volume import normalise

    structures = args.structure if args.simulate else [None]
    per_structure = {}
    for structure in structures:
        volumes, labels, names, results = pair_volumes(args, structure)
        volumes = normalise(volumes.astype(np.float32))
        for model in args.models:
            results[model] = read_pair(args, model, volumes, labels, names)
            print(Path(structure).stem if structure else "protocol", model, results[model], flush=True)
        per_structure[Path(structure).stem if structure else "protocol"] = results
    keys = ("v_kmeans_k2", "probe_accuracy") + (("v_kmeans_k2_all_bound",) if args.by_visibility else ())
    if len(per_structure) == 1:
        out = next(iter(per_structure.values()))
    else:
        mean = {
            model: {key: round(float(np.mean([r[model][key] for r in per_structure.values()])), 4) for key in keys}
            for model in args.models
        }
        if args.by_visibility:
            ceilings = [r["v_ceiling_membranes_seen"] for r in per_structure.values()]
            mean["v_ceiling_membranes_seen"] = round(float(np.mean(ceilings)), 4)
        out = {"structures": per_structure, "mean": mean}
        print("mean", mean, flush=True)
    Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
