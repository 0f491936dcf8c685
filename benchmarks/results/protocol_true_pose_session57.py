"""The protocol's own scores for the pose oracle (session 57, #9): what the targets ask of the features, against
what template matching with each particle's TRUE centre and pose gives on the same sub-tomograms.

    python benchmarks/results/protocol_true_pose_session57.py [--data benchmarks/data/protocol.h5] [--out FILE]

The oracle's features: raw voxels moved and rotated back by the true centre and pose, PCA(32), unit rows
(``separation_by_size.true_pose_features``); scored by ``protocol.score_features``, exactly as a model's features
are (V at the true k, best V over k, V at the label-free k, the 5-fold linear probe, the real held-out six, 7n4y
bound/free). Labels and poses score only; nothing here trains.

Result (benchmarks/results/protocol_true_pose_session57.json, 91 s on the 2-core Xeon with AMX beside a training
run): V at the true k 0.726, best V over k 0.736, V at the label-free k 0.672 (k 104), probe 0.696, real held-out
six 1.000, 7n4y bound/free 0.016. The shipped `general` (session 52): 0.682, 0.690, 0.677, 0.399, 0.945, 0.159.
The V target (0.80) and the probe target (0.85) lie above what the true pose gives on these sub-tomograms.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from deepfinder_unsup.io.dataset import read_dataset

sys.path.insert(0, "benchmarks")
from protocol import score_features  # noqa: E402
from separation_by_size import true_pose_features  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="benchmarks/data/protocol.h5")
    parser.add_argument("--out", default="benchmarks/results/protocol_true_pose_session57.json")
    args = parser.parse_args()
    t0 = time.time()
    data = read_dataset(args.data)
    scores = score_features(true_pose_features(data), data.labels, data.class_names)
    doc = {"data": args.data, "features": "true pose, PCA(32), unit", **scores, "seconds": round(time.time() - t0)}
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
