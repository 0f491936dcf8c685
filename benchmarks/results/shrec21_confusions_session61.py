"""Own SHREC'21: where the model's own 595-way class output sends each trained structure's boxes.

    python benchmarks/results/shrec21_confusions_session61.py MODEL runs/val_shrec21_big/dataset.h5 > OUT

For each of the 13 structures: the share of its boxes whose argmax over ALL the model's class columns is its own
column, its own membrane-bound copy (``NAME@membrane``, a class of its own), another of the 13, another class
read from a map or model file, a class made by code (procedural, builtin), or the negatives; the three columns it
is most often taken for; and, restricted to the 13 columns, the structure it is most often taken for. Says
whether the small structures are lost among each other (a fit of the 13) or among the hundreds made by code (a
crowded output).
"""

import json
import sys
from collections import Counter

import numpy as np

from deepfinder_unsup._quiet import import_tensorflow_quietly

tf = import_tensorflow_quietly()
import keras  # noqa: E402

from deepfinder_unsup.embed import resolve_model_path  # noqa: E402
from deepfinder_unsup.io.dataset import read_dataset  # noqa: E402
from deepfinder_unsup.model.card import load_model  # noqa: E402
from deepfinder_unsup.volume import normalise  # noqa: E402

model_path, data_path = resolve_model_path(sys.argv[1]), sys.argv[2]
d = read_dataset(data_path)
model, card = load_model(model_path)
sub = keras.Model(model.inputs, model.get_layer("class_output").output)
out = np.concatenate(
    [
        np.asarray(sub(normalise(d.subtomograms[i : i + 64])[..., None], training=False))
        for i in range(0, len(d.subtomograms), 64)
    ]
)
column_name = {int(k): v for k, v in card["classes"].items()}
columns = sorted(column_name)  # the output's columns in label order
names = d.class_names
structures = [lab for lab in sorted(names) if lab != 0]
own_column = {lab: columns.index(next(c for c in columns if column_name[c] == names[lab])) for lab in structures}
thirteen = set(own_column.values())


def base(name: str) -> str:
    return name.split("@")[0]


def kind(column: int) -> str:
    name = column_name[columns[column]]
    if name == "negative":
        return "negative"
    if name.startswith(("proc", "builtin")):  # procNNNNNNN: the classes made by code
        return "made_by_code"
    return "map_or_model"


res = {"model": str(model_path), "data": data_path, "structures": {}}
for lab in structures:
    rows = out[d.labels == lab]
    top = rows.argmax(axis=1)
    own = own_column[lab]
    in13 = np.array([own_column[s] for s in structures])
    taken13 = Counter(structures[i] for i in rows[:, in13].argmax(axis=1))
    taken13.pop(lab, None)
    res["structures"][names[lab]] = {
        "n": int(len(rows)),
        "own": float(np.mean(top == own)),
        "other_of_13": float(np.mean([t != own and t in thirteen for t in top])),
        "own_bound_copy": float(
            np.mean([t not in thirteen and column_name[columns[t]] == names[lab] + "@membrane" for t in top])
        ),
        "other_map_or_model": float(
            np.mean(
                [
                    t not in thirteen and kind(t) == "map_or_model" and base(column_name[columns[t]]) != names[lab]
                    for t in top
                ]
            )
        ),
        "most_taken_for": Counter(column_name[columns[t]] for t in top if t != own).most_common(3),
        "made_by_code": float(np.mean([kind(t) == "made_by_code" for t in top])),
        "negative": float(np.mean([kind(t) == "negative" for t in top])),
        "13way_most_taken_for": [(names[s], n) for s, n in taken13.most_common(3)],
    }
json.dump(res, sys.stdout, indent=1)
