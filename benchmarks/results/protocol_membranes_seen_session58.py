"""How many of the protocol's membrane-bound copies show their membrane, and the bound/free V that allows (#9).

    python benchmarks/results/protocol_membranes_seen_session58.py

Simulates again, with the protocol's own seeds, the sub-tomograms of ``protocol.BOUND_PAIR``'s bound class
(the protocol data set is deterministic for its seed: sample i draws from child seed i), checks that they are
the stored ones bit for bit, and asks of each whether its tilt series sampled the membrane's normal
(``microscope.sampled_by_tilts``: a flat membrane whose normal lies in the missing wedge leaves almost no contrast).
The bound/free V of features that see exactly the membranes sampled (the bound copies in the wedge grouped with
the free ones) is the ceiling of the protocol's bound/free score for any model; the target is 0.70.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import protocol  # noqa: E402
from sklearn.metrics import v_measure_score  # noqa: E402

from deepfinder_unsup.io.dataset import read_dataset  # noqa: E402
from deepfinder_unsup.simulate.config import SimConfig  # noqa: E402
from deepfinder_unsup.simulate.dataset import class_names_of  # noqa: E402
from deepfinder_unsup.simulate.microscope import sampled_by_tilts  # noqa: E402
from deepfinder_unsup.simulate.scene import StructureLibrary, simulate_subtomogram  # noqa: E402
from deepfinder_unsup.simulate.structures import load_structures  # noqa: E402

SEED = 101  # make_protocol_data's


def main() -> None:
    data = read_dataset(HERE.parent / "data" / "protocol.h5")
    config = SimConfig.from_file(HERE.parent / "configs" / "protocol_microscope.json")
    structures = load_structures(protocol.protocol_specs(), config.voxel_size)
    names = class_names_of(structures, config)
    assert names == data.class_names, "the protocol's classes are not the ones its specs give"
    labels = np.random.default_rng(SEED).permutation(np.repeat(np.array(sorted(names)), protocol.PER_CLASS))
    assert np.array_equal(labels, data.labels), "the protocol's labels are not the ones its seed gives"
    seeds = np.random.SeedSequence(SEED).spawn(len(labels))
    by_name = {v: k for k, v in names.items()}
    free, bound = (by_name[n] for n in protocol.BOUND_PAIR)
    library = StructureLibrary(structures)
    seen = []
    for i in np.flatnonzero(labels == bound):
        volume, info = simulate_subtomogram(library, int(bound), config, np.random.default_rng(seeds[i]))
        assert np.array_equal(volume, data.subtomograms[i]), f"sample {i} is not the stored one"
        seen.append(sampled_by_tilts(info.membrane_normal_xyz, info.params["tilt_min"], info.params["tilt_max"]))
    n_free = int(np.sum(labels == free))
    truth = np.array([0] * n_free + [1] * len(seen))
    grouping = np.array([0] * n_free + [int(s) for s in seen])
    out = {
        "pair": list(protocol.BOUND_PAIR),
        "bound_copies": len(seen),
        "membrane_sampled": int(np.sum(seen)),
        "v_ceiling_membranes_seen": round(float(v_measure_score(truth, grouping)), 4),
    }
    print(out)
    (HERE / "protocol_membranes_seen_session58.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
