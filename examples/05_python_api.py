"""The pipeline in Python with the shipped model: extract, embed, cluster, score, write object lists.

Run after 03_target_tomogram.sh:  python examples/05_python_api.py
"""

import numpy as np

import deepfinder_unsup as dfu
from deepfinder_unsup.cluster import select_k, sweep_k

objl = dfu.read_objl("example_run/target/objects.xml")
subtomos, kept = dfu.extract_subtomograms(
    ["example_run/target/tomogram.mrc"], objl, box_size=40, voxel_size=10.0, border="pad"
)
features = dfu.normalise_features(dfu.load_pretrained(progress=True).transform(subtomos))  # unit length
truth = np.array([o["label"] for o in kept])
per_k, labels = sweep_k(features, range(2, 11), truth=truth)
k = select_k(per_k)
row = next(r for r in per_k if r["k"] == k)
print(
    f"selected k = {k}: V-measure {row['v_measure']:.3f}, homogeneity {row['homogeneity']:.3f}, "
    f"completeness {row['completeness']:.3f}"
)
# the cluster becomes the class (class_label), the picks' own class is kept as true_label
dfu.write_xml(dfu.clustered_objl(kept, labels[k]), "example_run/clusters_api.xml", overwrite=True)
print("wrote example_run/clusters_api.xml")
