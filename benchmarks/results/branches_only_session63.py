"""The pose-free branches alone: the same model with the flatten path's Dense zeroed, written as a new model file.

    python benchmarks/results/branches_only_session63.py MODEL OUT.keras

A ``flatten_conv*`` head sums the pose-bound flatten path and the pose-free branches before its ReLU; with the
flatten path's Dense at zero, the embedding is what the branches alone give (what a sample whose flatten path
``train --flatten-drop`` dropped is trained on). Score the file like any model (benchmarks/paired_bootstrap.py).

Result (session 63, runs/drop63's epoch 10): the 207 0.656 against `general`'s 0.682 (-0.022 [-0.029, -0.016]),
own SHREC'21 0.542 against 0.588 (docs/training_history.md, "Session 63").
"""

import argparse

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("out")
    args = parser.parse_args()
    from deepfinder_unsup._quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from deepfinder_unsup.model.card import load_model, save_model

    model, card = load_model(args.model)
    dense = model.get_layer("head_dense")
    dense.set_weights([np.zeros_like(w) for w in dense.get_weights()])
    card = {**card, "note": f"{args.model} with the flatten path's Dense zeroed: the pose-free branches alone"}
    save_model(model, args.out, card)


if __name__ == "__main__":
    main()
