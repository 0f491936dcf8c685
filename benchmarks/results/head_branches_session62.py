"""How much each branch of the head adds to the head's sum: the RMS of each branch's pooled input and Dense output.

    python benchmarks/results/head_branches_session62.py MODEL [MODEL ...] --data runs/val_shrec21/dataset.h5

The ``flatten_conv*`` heads add branches through Dense layers that start at zero; a branch whose Dense output stays
small beside the flatten path's is a branch the network does not use, whatever its capacity. Boxes: the first
``--n`` sub-tomograms of the data set, normalised as ``embed`` does, one view.

Result (session 62, 64 boxes of runs/val_shrec21): the shipped `general` (wide head, trained sessions 43-61), Dense
output RMS: flatten path 5.12, flatten_conv's branch 0.36, the wide branch **0.007** (its pooled maps 0.027): the
wide branch never took part. The bilinear branch (pooled at unit RMS) after its first epoch: see
docs/training_history.md, "Session 62".
"""

import argparse
import json

import h5py
import numpy as np

from deepfinder_unsup._quiet import import_tensorflow_quietly

BRANCHES = {
    "flatten": ("head_flatten", "head_dense"),
    "conv": ("head_branch_pool", "head_branch_dense"),
    "wide": ("head_wide_pool", "head_wide_dense"),
    "bilinear": ("head_bilinear_pool", "head_bilinear_dense"),
}


def branch_sizes(model_name: str, vols: np.ndarray) -> dict[str, dict[str, float]]:
    """Per branch of the model's head: RMS of its pooled input and of its Dense output over the boxes."""
    import keras

    from deepfinder_unsup.embed import resolve_model_path
    from deepfinder_unsup.model.card import load_model
    from deepfinder_unsup.volume import normalise

    model, _ = load_model(resolve_model_path(model_name))
    present = {layer.name for layer in model.layers}
    names = [pair for pair in BRANCHES.items() if set(pair[1]) <= present]
    layers = [name for _, pair in names for name in pair]
    outputs = keras.Model(model.inputs[0], [model.get_layer(n).output for n in layers])(
        normalise(vols)[..., None], training=False
    )
    rms = [round(float(np.sqrt(np.mean(np.square(np.asarray(o, np.float64))))), 4) for o in outputs]
    return {branch: {"pooled_rms": rms[2 * i], "dense_rms": rms[2 * i + 1]} for i, (branch, _) in enumerate(names)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--data", required=True)
    parser.add_argument("--n", type=int, default=64)
    args = parser.parse_args()
    import_tensorflow_quietly()
    with h5py.File(args.data, "r") as f:
        vols = np.asarray(f["subtomograms"][: args.n], np.float32)
    print(json.dumps({m: branch_sizes(m, vols) for m in args.models}, indent=1))


if __name__ == "__main__":
    main()
