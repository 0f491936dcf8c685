"""Each pose-free branch's part of a ``flatten_conv*`` head's sum: the RMS of its Dense's output on protocol boxes.

A branch whose Dense starts at zero takes part only once that Dense has moved; this says how far it has, beside
the others (sessions 62 and 66). ``head_dense`` (the flatten path) is reported too, also where ``--flatten-drop 1``
removes it from the sum.

    python benchmarks/branch_parts.py MODEL [MODEL ...] [--data benchmarks/data/protocol.h5] [--boxes 64]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

BRANCH_DENSES = ("head_dense", "head_branch_dense", "head_wide_dense", "head_bilinear_dense", "head_zoom_dense")


def branch_parts(model_path: str, boxes: np.ndarray) -> dict[str, float]:
    """RMS of each branch Dense's output (the ones the model has) on ``boxes`` (b, B, B, B)."""
    import keras

    from deepfinder_unsup.model.card import load_model

    model, _ = load_model(model_path)
    names = [name for name in BRANCH_DENSES if name in {layer.name for layer in model.layers}]
    outputs = keras.Model(model.inputs[0], [model.get_layer(name).output for name in names]).predict(
        boxes[..., None], verbose=0
    )
    return {name: round(float(np.sqrt(np.mean(np.square(out)))), 4) for name, out in zip(names, outputs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--data", default="benchmarks/data/protocol.h5")
    parser.add_argument("--boxes", type=int, default=64, help="the data set's first N sub-tomograms")
    args = parser.parse_args()
    from deepfinder_unsup._quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from deepfinder_unsup.io.dataset import read_dataset
    from deepfinder_unsup.volume import normalise

    boxes = normalise(read_dataset(args.data).subtomograms[: args.boxes])
    for path in args.models:
        print(json.dumps({"model": path, **branch_parts(path, boxes)}), flush=True)


if __name__ == "__main__":
    main()
