"""Does the zoomed centre carry what the box's encoder maps lose for small structures? A readout, no training.

The zoom head (``--head flatten_conv_zoom``, session 66) passes the box's central half, upsampled 2x, through the
same encoder, on the reasoning that a structure 7 voxels across is 2 voxels wide in the encoder's 10^3 maps and 4
when zoomed. This asks whether that information is there before any head learns it: a model's encoder maps (last
level, 10^3 x 64) of the box, of the zoomed centre (``classifier.zoomed_centre``), and of both, pooled over space
(mean + max, 128 numbers each: position-free as the pose-free branches are), read by a 5-fold logistic-regression
probe and by nearest-neighbour purity (cosine, standardised features) per mass quartile of the protocol's 200
never-trained procedural structures (separation_by_size.py's groups; one view, labels only to score). Session 66
read session 65's branches-alone model (git show 650748a:benchmarks/checkpoints/branches_alone_session65.keras),
the zoom run's starting point. The control
for the doubled number of features: the box beside its own wedge-symmetric view (rotated 180 degrees about z,
another sub-tomogram the microscope could have recorded) through the same encoder. Session 68 added a second
scale, the central quarter at 4x (``zoomed_centre(x, 4)``), read beside box and zoom against the view in its place:
whether a second zoom branch is worth another encoder pass.

    python benchmarks/zoom_readout.py --model general \\
        --data benchmarks/data/protocol.h5 --out OUT.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from separation_by_size import class_rows, mass_groups, nearest_neighbour_same_class, probe_recall


def encoder_readouts(model: str, boxes: np.ndarray, batch: int = 32) -> dict[str, np.ndarray]:
    """Mean + max pooled last-level encoder maps of the box, of its zoomed centre (2x) and of its central quarter at
    4x; the zoomed centre beside the box, and (the control) the box's wedge-symmetric view beside it; the 4x centre
    beside box and zoom, and (its control) the view beside those two."""
    import keras

    from deepfinder_unsup.embed import resolve_model_path
    from deepfinder_unsup.model.card import load_model
    from deepfinder_unsup.model.classifier import zoomed_centre
    from deepfinder_unsup.model.deepfinder import build_encoder

    classifier, _ = load_model(resolve_model_path(model))
    box = boxes.shape[1]
    encoder = build_encoder(box)
    for layer in encoder.layers:
        if layer.get_weights():
            layer.set_weights(classifier.get_layer(layer.name).get_weights())
    inp = keras.Input((box, box, box, 1))
    zoom4 = zoomed_centre(inp, 4, prefix="zoom4")
    net = keras.Model(inp, [encoder(inp), encoder(zoomed_centre(inp)), encoder(zoom4)])
    parts: dict[str, list[np.ndarray]] = {"box": [], "zoom": [], "zoom4": [], "view": []}
    for i in range(0, len(boxes), batch):
        chunk = boxes[i : i + batch, ..., None]
        view = np.ascontiguousarray(np.rot90(chunk, 2, axes=(2, 3)))  # 180 degrees about z: keeps the wedge
        maps_of = list(net.predict_on_batch(chunk)) + [net.predict_on_batch(view)[0]]
        for name, maps in zip(("box", "zoom", "zoom4", "view"), maps_of):
            flat = np.asarray(maps, np.float32).reshape(len(maps), -1, maps.shape[-1])
            parts[name].append(np.concatenate([flat.mean(1), flat.max(1)], 1))
    readouts = {name: np.concatenate(rows) for name, rows in parts.items()}
    box_zoom = readouts["box+zoom"] = np.concatenate([readouts["box"], readouts["zoom"]], 1)
    readouts["box+view"] = np.concatenate([readouts["box"], readouts["view"]], 1)
    readouts["box+zoom+zoom4"] = np.concatenate([box_zoom, readouts["zoom4"]], 1)
    readouts["box+zoom+view"] = np.concatenate([box_zoom, readouts.pop("view")], 1)
    return readouts


def scores(data, features: np.ndarray) -> dict:
    """Overall probe and purity, and both by mass quartile, of standardised features."""
    from sklearn.preprocessing import StandardScaler

    truth = np.asarray(data.labels)
    scaled = StandardScaler().fit_transform(features.astype(np.float64))
    unit = scaled / np.maximum(np.linalg.norm(scaled, axis=1, keepdims=True), 1e-12)
    nn, probe = nearest_neighbour_same_class(unit, truth), probe_recall(scaled, truth)
    return {
        "probe": round(float(probe.mean()), 4),
        "nn_same": round(float(nn.mean()), 4),
        "by_mass": mass_groups(class_rows(data, nn, probe)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="general", help="a model name or file (its encoder's weights are read)")
    parser.add_argument("--data", default="benchmarks/data/protocol.h5")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    from deepfinder_unsup._quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from deepfinder_unsup.io.dataset import read_dataset
    from deepfinder_unsup.volume import normalise

    data = read_dataset(args.data)
    readouts = encoder_readouts(args.model, normalise(data.subtomograms))
    result: dict = {"model": args.model, "data": args.data}
    for name, features in readouts.items():
        result[name] = scores(data, features)
        quartiles = ", ".join(f"{g['probe_recall']:.3f}" for g in result[name]["by_mass"])
        print(f"{name:>9}: probe {result[name]['probe']:.3f} (by mass quartile {quartiles}), "
              f"nearest neighbour {result[name]['nn_same']:.3f}", flush=True)  # fmt: skip
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
