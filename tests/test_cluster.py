"""Clustering: the k parser, the label-free rule, every method, the truth scores against a hand computation,
and the report's content."""

import base64
import json
import re

import numpy as np
import pytest
from sklearn import metrics

from deepfinder_unsup.cluster import (
    cluster_once,
    metrics_document,
    parse_k_range,
    select_k,
    strict_json,
    sweep_k,
    truth_scores,
)
from deepfinder_unsup.io import InputError


def blobs(rng, k=4, per=30, dim=8, spread=0.05):
    """k tight Gaussian blobs on the corners of a simplex: every sane method recovers them exactly."""
    centres = np.eye(dim)[:k] * 3.0
    x = np.concatenate([c + spread * rng.standard_normal((per, dim)) for c in centres])
    return x, np.repeat(np.arange(k), per)


# -- parse_k_range ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text,expected",
    [("2:5", [2, 3, 4, 5]), ("8,3,5,3", [3, 5, 8]), ("7", [7]), ("4:4", [4])],
)
def test_k_ranges_and_lists(text, expected):
    assert parse_k_range(text) == expected


@pytest.mark.parametrize(
    "text,message",
    [
        ("5:2", "runs backwards; write 2:5"),
        ("1:4", "at least 2"),
        ("1", "at least 2"),
        ("a:b", "expected a range"),
        ("2:3:4", "expected a range"),
        ("2:100000", "at most 500"),
        ("", "expected a range"),
    ],
)
def test_bad_k_ranges_say_what_is_wrong(text, message):
    with pytest.raises(InputError, match=re.escape(message)):
        parse_k_range(text)


def test_the_sweep_limit_is_exact_and_counted_right():
    """500 values pass, 501 are refused, with the count in the message; the same for lists; long input is cut
    to 40 characters in the message."""
    assert len(parse_k_range("2:501")) == 500
    with pytest.raises(InputError, match=re.escape("'2:502': 501 values of k; at most 500")):
        parse_k_range("2:502")
    with pytest.raises(InputError, match=re.escape("'1000:1500': 501 values of k")):  # hi + lo would say 2501
        parse_k_range("1000:1500")
    assert len(parse_k_range(",".join(str(k) for k in range(2, 502)))) == 500
    with pytest.raises(InputError, match=re.escape("--k: 501 values of k; at most 500")):
        parse_k_range(",".join(str(k) for k in range(2, 503)))
    for bad in ("x" * 60, "2:" + "x" * 60):
        with pytest.raises(InputError) as info:
            parse_k_range(bad)
        assert repr(bad[:40]) in str(info.value) and repr(bad[:41]) not in str(info.value)


# -- select_k ----------------------------------------------------------------------------------------------------
def test_select_k_takes_the_largest_eigengap_and_the_smaller_k_on_ties():
    rows = [{"k": k, "eigengap": g, "calinski_harabasz": 100.0 - k} for k, g in ((2, 0.1), (3, 0.3), (4, 0.3))]
    assert select_k(rows) == 3
    rows[1]["eigengap"] = float("nan")  # a NaN gap never wins
    assert select_k(rows) == 4


def test_the_laplacian_spectrum_matches_one_built_by_hand(rng):
    """Eigenvalues of I - D^-1/2 A D^-1/2 for the symmetrised 10-nearest-neighbour graph, written out with numpy."""
    from deepfinder_unsup.cluster import EIGENGAP_NEIGHBOURS, graph_laplacian_spectrum

    x = rng.standard_normal((60, 5))
    distance = np.linalg.norm(x[:, None] - x[None], axis=-1)
    np.fill_diagonal(distance, np.inf)
    knn = np.zeros((60, 60))
    for i, row in enumerate(distance):
        knn[i, np.argsort(row)[:EIGENGAP_NEIGHBOURS]] = 1.0
    a = 0.5 * (knn + knn.T)
    d = 1.0 / np.sqrt(a.sum(axis=1))
    expected = np.sort(np.linalg.eigvalsh(np.eye(60) - d[:, None] * a * d[None, :]))
    np.testing.assert_allclose(graph_laplacian_spectrum(x), expected, atol=1e-10)
    assert abs(expected[0]) < 1e-10  # a connected graph: one zero eigenvalue


def test_the_eigengap_counts_groups_where_calinski_harabasz_counts_superclusters(rng):
    """Two far-apart pairs of groups (e.g. two sizes, two shapes each), the groups of a pair 6 sigma apart along
    one of 8 dimensions: the Calinski-Harabasz maximum (the rule until session 9) takes the two pairs, the
    neighbour graph has four components and the gap says 4."""
    from deepfinder_unsup.cluster import graph_eigengaps

    centres = np.zeros((4, 8))
    centres[[1, 3], 0], centres[[2, 3], 1] = 0.6, 20.0
    x = np.concatenate([c + 0.1 * rng.standard_normal((30, 8)) for c in centres])
    per_k, _ = sweep_k(x, range(2, 8))
    assert max(per_k, key=lambda r: r["calinski_harabasz"])["k"] == 2
    assert select_k(per_k) == 4
    gaps = graph_eigengaps(x, range(2, 8))
    assert gaps[4] > 0.1 > max(g for k, g in gaps.items() if k != 4)


def test_the_eigengap_of_many_picks_uses_a_fixed_sample(rng, monkeypatch):
    """Beyond EIGENGAP_MAX_PICKS the spectrum is that of a seeded random sample: the same k, reproducibly."""
    import deepfinder_unsup.cluster as cluster

    x, _ = blobs(rng, k=5, per=60)
    full = cluster.graph_eigengaps(x, range(2, 9))
    monkeypatch.setattr(cluster.choose_k, "EIGENGAP_MAX_PICKS", 150)
    sampled = cluster.graph_eigengaps(x, range(2, 9), seed=1)
    assert len(cluster.graph_laplacian_spectrum(x, seed=1)) == 150
    assert sampled == cluster.graph_eigengaps(x, range(2, 9), seed=1)
    assert max(full, key=full.get) == max(sampled, key=sampled.get) == 5


@pytest.mark.parametrize("method", ["kmeans", "gmm", "agglomerative"])
def test_every_method_recovers_separated_blobs_and_the_rule_finds_k(rng, method):
    x, truth = blobs(rng)
    per_k, assignments = sweep_k(x, [2, 3, 4, 5, 6], method=method, truth=truth)
    row = {r["k"]: r for r in per_k}
    assert row[4]["v_measure"] == pytest.approx(1.0) and row[4]["ari"] == pytest.approx(1.0)
    assert select_k(per_k) == 4
    assert sorted(np.unique(assignments[4])) == [1, 2, 3, 4]  # 1-based labels
    if method == "gmm":
        assert min(per_k, key=lambda r: r["bic"])["k"] == 4
    if method == "kmeans":
        inertia = [r["inertia"] for r in per_k]
        assert all(a >= b for a, b in zip(inertia, inertia[1:]))  # more clusters, never more inertia


def test_same_seed_same_clusters(rng):
    x, _ = blobs(rng, k=5, spread=0.8)  # overlapping: the result depends on the seed's initialisation
    for method in ("kmeans", "gmm"):
        a, _ = cluster_once(x, 5, method, seed=3)
        b, _ = cluster_once(x, 5, method, seed=3)
        np.testing.assert_array_equal(a, b)


def test_unknown_method_is_an_input_error(rng):
    with pytest.raises(InputError, match="unknown clustering method 'dbscan'"):
        cluster_once(rng.standard_normal((10, 2)), 2, "dbscan")


# -- truth scores against entropies computed by hand --------------------------------------------------------------
def entropy(counts):
    p = counts[counts > 0] / counts.sum()
    return -(p * np.log(p)).sum()


def test_v_measure_matches_its_definition(rng):
    truth = rng.integers(0, 4, 300)
    labels = np.where(rng.random(300) < 0.7, truth, rng.integers(0, 5, 300))
    table = np.zeros((4, 5))
    np.add.at(table, (truth, labels), 1)
    h_c, h_k = entropy(table.sum(1)), entropy(table.sum(0))
    h_c_given_k = sum(table[:, j].sum() / 300 * entropy(table[:, j]) for j in range(5))
    h_k_given_c = sum(table[i].sum() / 300 * entropy(table[i]) for i in range(4))
    hom, com = 1 - h_c_given_k / h_c, 1 - h_k_given_c / h_k
    scores = truth_scores(truth, labels)
    assert scores["homogeneity"] == pytest.approx(hom)
    assert scores["completeness"] == pytest.approx(com)
    assert scores["v_measure"] == pytest.approx(2 * hom * com / (hom + com))
    permuted = truth_scores(truth, (labels + 2) % 5)  # renaming clusters changes nothing
    assert permuted["v_measure"] == pytest.approx(scores["v_measure"])


def test_metrics_json_is_strict(rng):
    row = {"k": 2, "calinski_harabasz": float("nan"), "eigengap": float("nan"), "v_measure": 0.5}
    doc = metrics_document([row], "kmeans", True, 3)
    text = json.dumps(strict_json(doc), allow_nan=False)  # raises on a bare NaN
    assert json.loads(text)["per_k"][0]["calinski_harabasz"] is None
    assert json.loads(text)["per_k"][0]["eigengap"] is None


# -- the report ----------------------------------------------------------------------------------------------------
def test_report_shows_every_figure_and_the_contingency_it_claims(tmp_path, rng):
    from deepfinder_unsup.report import contingency_percent, make_report

    x, truth = blobs(rng, k=3, per=20)
    truth_ids = truth + 1
    per_k, assignments = sweep_k(x, [2, 3], truth=truth_ids)
    doc = metrics_document(per_k, "kmeans", True, len(x))
    slices = rng.standard_normal((len(x), 2, 8, 8)).astype(np.float32)
    html_path = make_report(
        tmp_path, x, doc, assignments, truth=truth_ids, class_names={1: "a", 2: "b", 3: "c"}, slices=slices
    )
    page = html_path.read_text()
    assert "selected k = 3" in page and "best k by V-measure = 3 (V = 1.000)" in page
    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    # t-SNE clusters + truth, two score plots, contingency, sizes, one gallery per cluster (UMAP optional)
    assert len(images) in (9, 11)
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    assert sorted(p.name for p in (tmp_path / "figures").glob("gallery_k3_*.png")) == [
        "gallery_k3_c1.png",
        "gallery_k3_c2.png",
        "gallery_k3_c3.png",
    ]
    pct, rows, cols = contingency_percent(truth_ids, assignments[3])
    assert list(rows) == [1, 2, 3] and sorted(pct.max(axis=1)) == [100.0, 100.0, 100.0]
    np.testing.assert_allclose(pct.sum(axis=1), 100.0)


def test_l2_normalisation_keeps_directions_and_refuses_zero_vectors(rng):
    from deepfinder_unsup.cluster import normalise_features

    x = rng.standard_normal((20, 32)) * rng.uniform(0.1, 50, (20, 1))
    u = normalise_features(x)
    np.testing.assert_allclose(np.linalg.norm(u, axis=1), 1.0)
    np.testing.assert_allclose(u * np.linalg.norm(x, axis=1, keepdims=True), x)
    assert normalise_features(x, "none") is x
    x[3] = 0
    with pytest.raises(InputError, match="e.h5: embedding 3 is all zeros"):
        normalise_features(x, "l2", "e.h5")
    with pytest.raises(InputError, match=re.escape("unknown normalisation 'cosine'; choose from l2, none")):
        normalise_features(x, "cosine")


def test_source_geometry_reads_every_tomogram_extension_and_skips_what_it_cannot(tmp_path):
    """Sources ending .mrc, .rec and .map are read (all MRC files to IMOD and RELION); a missing, unreadable or
    other file is left out without stopping the others."""
    from deepfinder_unsup.cluster import source_geometry
    from deepfinder_unsup.io.mrc import write_mrc
    from deepfinder_unsup.io.objl import new_object

    for name, shape in (("a.mrc", (4, 5, 6)), ("b.rec", (6, 5, 4)), ("c.map", (5, 5, 5))):
        write_mrc(np.zeros(shape, np.float32), tmp_path / name, 8.0)
    (tmp_path / "bad.mrc").write_bytes(b"not an MRC file")
    (tmp_path / "d.txt").write_text("x")
    sources = ["bad.mrc", "a.mrc", "b.rec", "c.map", "d.txt", "missing.mrc"]
    objl = [new_object(1, 1.0, 1.0, 1.0) | {"source": str(tmp_path / s)} for s in sources]
    geometry = source_geometry(objl)
    assert geometry == {"a": ((6, 5, 4), 8.0), "b": ((4, 5, 6), 8.0), "c": ((5, 5, 5), 8.0)}


# -- per-cluster files -------------------------------------------------------------------------------------------
def test_cluster_files_read_back_with_the_cluster_as_class(tmp_path):
    import csv

    from deepfinder_unsup.cluster import write_cluster_files
    from deepfinder_unsup.io import read_objl, read_star
    from deepfinder_unsup.io.objl import new_object

    objl = [
        new_object(
            7 + i % 2,
            10.5 + i,
            20.0 + 2 * i,
            30.25,
            tomo_idx=i % 2,
            obj_id=100 + i,
            phi=10.0 * i,
            the=20.0,
            psi=-30.0,
            class_name=["ring", "rod"][i % 2],
            source=f"t{i % 2}.mrc",
        )
        for i in range(6)
    ]
    assignments = {2: np.array([1, 2, 1, 2, 1, 2]), 3: np.array([3, 1, 2, 3, 1, 2])}
    written = write_cluster_files(objl, assignments, tmp_path, tomo_names=["t0", "t1"])
    assert sorted(p.name for p in written) == sorted(
        ["clusters_k2.xml", "clusters_k2.star", "clusters_k3.xml", "clusters_k3.star", "clusters.csv"]
    )
    for k, labels in assignments.items():
        back = read_objl(tmp_path / f"clusters_k{k}.xml")
        assert [o["label"] for o in back] == labels.tolist()
        assert [o["class_name"] for o in back] == [f"cluster{c}" for c in labels]
        assert [int(o["true_label"]) for o in back] == [o["label"] for o in objl]
        assert [o["true_class_name"] for o in back] == [o["class_name"] for o in objl]
        for a, b in zip(back, objl):
            keys = ("x", "y", "z", "tomo_idx", "obj_id", "phi", "the", "psi")
            assert [a[key] for key in keys] == [b[key] for key in keys]
        star = read_star(tmp_path / f"clusters_k{k}.star", tomo_names=["t0", "t1"])
        assert [o["label"] for o in star] == labels.tolist()
        assert [o["tomo_idx"] for o in star] == [o["tomo_idx"] for o in objl]
        np.testing.assert_allclose([[o["x"], o["y"], o["z"]] for o in star], [[o["x"], o["y"], o["z"]] for o in objl])
    rows = list(csv.reader((tmp_path / "clusters.csv").open()))
    assert rows[0] == [
        "index",
        "tomo_idx",
        "obj_id",
        "x",
        "y",
        "z",
        "class_label",
        "source",
        "cluster_k2",
        "cluster_k3",
    ]
    for i, (row, obj) in enumerate(zip(rows[1:], objl)):
        assert row == [
            str(i),
            str(obj["tomo_idx"]),
            str(obj["obj_id"]),
            str(obj["x"]),
            str(obj["y"]),
            str(obj["z"]),
            str(obj["label"]),
            obj["source"],
            str(assignments[2][i]),
            str(assignments[3][i]),
        ]
    with pytest.raises(FileExistsError, match="clusters_k2.xml"):
        write_cluster_files(objl, assignments, tmp_path)
    assert (tmp_path / "clusters_k2.xml").stat().st_size > 0


def test_written_metrics_are_strict_json_and_never_replace_a_file(tmp_path):
    from deepfinder_unsup.cluster import write_metrics

    doc = {"per_k": [{"k": 2, "silhouette": float("nan"), "v": float("inf")}], "selected_k": 2}
    path = write_metrics(doc, tmp_path / "m.json")
    assert json.loads(path.read_text()) == {"per_k": [{"k": 2, "silhouette": None, "v": None}], "selected_k": 2}
    with pytest.raises(FileExistsError):
        write_metrics({"x": 1}, path)
    write_metrics({"x": 1}, path, overwrite=True)
    assert json.loads(path.read_text()) == {"x": 1}


def test_deepfinder_users_find_their_names_at_the_top_level():
    import pydoc

    import deepfinder_unsup as dfu
    from deepfinder_unsup.cluster import clustered_objl
    from deepfinder_unsup.io import read_objl, write_objl

    assert dfu.read_xml is read_objl and dfu.write_xml is write_objl and dfu.clustered_objl is clustered_objl
    page = pydoc.render_doc(dfu)
    for name in ("load_pretrained", "Embedder", "build_encoder", "read_xml", "clustered_objl", "subtomogram_average"):
        assert name in page


@pytest.mark.parametrize("method, title", [("coassociation", "the co-association of 10"), ("hdbscan", "HDBSCAN")])
def test_rare_structure_gets_its_own_cluster_with_rare(tmp_path, rng, method, title):
    """Three groups of 60 and one of 6 (3 %): ``--rare`` (no k) gives the small one its own cluster in
    clusters_rare.xml/.star with either method, scores it with --evaluate, and the report shows the dendrogram."""
    from deepfinder_unsup.cli import main
    from deepfinder_unsup.cluster import rare_class_found
    from deepfinder_unsup.io import read_objl
    from deepfinder_unsup.io.dataset import write_embeddings

    centres = rng.normal(size=(4, 32))
    sizes = [60, 60, 60, 6]
    emb = np.concatenate([c + 0.08 * rng.normal(size=(n, 32)) for c, n in zip(centres, sizes)])
    truth = np.repeat(np.arange(1, 5), sizes)
    objl = [
        {"tomo_idx": 0, "obj_id": i, "label": int(t), "x": 1.0 * i, "y": 0.0, "z": 0.0} for i, t in enumerate(truth)
    ]
    path = write_embeddings(tmp_path / "emb.h5", emb, objl, 10.0, 40)
    out = tmp_path / "c"
    args = ["cluster", str(path), "--k", "2:8", "--rare", "--rare-method", method, "--evaluate", "--out", str(out)]
    assert main(args) == 0
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["rare"]["method"] == method and doc["rare"]["n_clusters"] == 4
    assert sorted(doc["rare"]["sizes"].values()) == [6, 60, 60, 60] and doc["rare"]["v_measure"] > 0.99
    clusters = np.array([o["label"] for o in read_objl(out / "clusters_rare.xml")])
    assert rare_class_found(clusters, truth == 4)
    assert (out / "clusters_rare.star").exists() and (out / "figures" / "rare_dendrogram.png").exists()
    assert f"Rare structures: {title}" in (report := (out / "report.html").read_text())
    assert "found 4 clusters" in report
    assert main(["cluster", str(path), "--k", "2:8", "--rare", "--out", str(out)]) == 1  # nothing replaced
    with pytest.raises(SystemExit) as usage:
        main(["cluster", str(path), "--rare", "--min-cluster-size", "1", "--out", str(tmp_path / "d")])
    assert usage.value.code == 2


def _blobs(rng, sizes, dim=16, spread=0.25):
    centres = 3.0 * rng.normal(size=(len(sizes), dim))
    x = np.concatenate([c + spread * rng.normal(size=(n, dim)) for c, n in zip(centres, sizes)])
    return x, np.repeat(np.arange(len(sizes)), sizes)


def test_coassociation_keeps_a_2_percent_structure_and_joins_the_split_large_ones(rng):
    """Five structures of 120 and one of 12 (2 %): every k-means run at k = 10..30 splits the large ones
    differently but keeps the small one apart, so the rule gives exactly six groups, the rare one among them,
    where k-means at the label-free k does not have to."""
    from deepfinder_unsup.cluster import coassociation_labels, rare_class_found

    x, truth = _blobs(rng, [120] * 5 + [12])
    labels = coassociation_labels(x)
    assert len(set(labels.tolist()) - {-1}) == 6 and np.all(labels >= 0)
    assert rare_class_found(labels, truth == 5)
    assert metrics.v_measure_score(truth, labels) > 0.99
    assert np.array_equal(np.bincount(labels), [120] * 5 + [12])  # numbered by decreasing size


def test_coassociation_marks_groups_under_the_minimum_size_unassigned(rng):
    """A group of 4 under a minimum of 5 is -1, not a cluster; at a minimum of 3 it is one."""
    from deepfinder_unsup.cluster import coassociation_labels

    x, truth = _blobs(rng, [100, 100, 4])
    assert np.all(coassociation_labels(x, min_cluster_size=5)[truth == 2] == -1)
    small = coassociation_labels(x, min_cluster_size=3)[truth == 2]
    assert len(set(small.tolist())) == 1 and small[0] >= 0


def test_coassociation_on_a_sample_assigns_every_pick_like_the_full_rule(rng):
    """Beyond ``max_picks`` the rule runs on a sample and assigns the rest to the nearest group: on separated
    structures the partition equals the one from all picks."""
    from deepfinder_unsup.cluster import coassociation_labels

    x, truth = _blobs(rng, [150, 150, 150, 30])
    full = coassociation_labels(x)
    sampled = coassociation_labels(x, max_picks=200)
    assert len(sampled) == len(x)
    assert metrics.adjusted_rand_score(full, sampled) == 1.0
    assert metrics.adjusted_rand_score(truth, sampled) == 1.0


def test_merge_close_groups_joins_the_halves_of_one_cloud_not_two_clouds(rng):
    """One round cloud (8-D) cut in two by a plane: its halves' centres are 1.6 apart, their spread (mean
    distance to the centre) about 2.7, so they are joined at 1.5; a second cloud about 10 spreads away stays
    its own group."""
    from deepfinder_unsup.cluster import merge_close_groups

    cloud = rng.normal(size=(400, 8))
    far = rng.normal(size=(200, 8)) + np.r_[30.0, np.zeros(7)]
    x = np.concatenate([cloud, far])
    halves = np.r_[(cloud[:, 0] > 0).astype(int), np.full(200, 2)]
    merged = merge_close_groups(x, halves, 1.5)
    assert len(set(merged[:400].tolist())) == 1 and set(merged[400:].tolist()).isdisjoint(merged[:400])
    assert sorted(set(merged.tolist())) == [0, 1]
    assert len(set(merge_close_groups(x, halves, 0.1).tolist())) == 3  # a stricter ratio joins nothing


def test_unknown_rare_method_is_refused_before_any_work(tmp_path, rng):
    from deepfinder_unsup.io.dataset import write_embeddings
    from deepfinder_unsup.pipeline import cluster_to_folder

    objl = [{"tomo_idx": 0, "obj_id": i, "label": 1, "x": 1.0 * i, "y": 0.0, "z": 0.0} for i in range(20)]
    path = write_embeddings(tmp_path / "emb.h5", rng.normal(size=(20, 32)), objl, 10.0, 40)
    with pytest.raises(InputError, match="unknown rare-structure method 'dbscan'"):
        cluster_to_folder(path, "2:4", tmp_path / "out", rare=True, rare_method="dbscan")
    assert not (tmp_path / "out").exists()


def test_stability_tells_real_clusters_from_arbitrary_cuts(rng):
    from deepfinder_unsup.cluster import stability

    centres = rng.normal(size=(4, 32)) * 5
    blobs = np.concatenate([c + rng.normal(size=(50, 32)) for c in centres])
    assert stability(blobs, 4) > 0.99  # the same four groups from any 80 % of the picks
    assert stability(rng.normal(size=(200, 32)), 4) < 0.4  # one Gaussian cut in four: a different cut each time
    assert stability(blobs, 7) < stability(blobs, 4)  # splitting real groups is not stable either


def test_the_label_free_k_rule_and_the_gap_merge_on_separated_groups(rng):
    """Three groups of 40 and one of 10, far apart: k-means at the label-free k (0-based labels) and the
    over-clustering merged at the largest gap of its centroids' tree both give back the four groups; the tree
    has one row per merge of the over-clustered centroids (30, at most N / 5)."""
    from deepfinder_unsup.cluster import kmeans_selected_k, overcluster_merge

    x, truth = _blobs(rng, [40, 40, 40, 10], spread=0.1)
    labels = kmeans_selected_k(x)
    assert labels.min() == 0 and metrics.adjusted_rand_score(truth, labels) == 1.0
    merged, tree = overcluster_merge(x)
    assert metrics.adjusted_rand_score(truth, merged) == 1.0
    assert tree.shape == (25, 4) and merged.min() == 0  # min(30, 130 // 5) = 26 centroids, 25 merges
    assert len(set(overcluster_merge(x[:20], n_over=30)[0].tolist())) <= 4  # at most N / 5 groups for 20 picks


def test_stability_is_reproducible_for_a_seed():
    """The same seed gives the same score (the resampling and every k-means run are seeded); the default seed
    is 0; on one Gaussian cut in four (an arbitrary cut) other seeds give other scores."""
    from deepfinder_unsup.cluster import stability

    x = np.random.default_rng(4).normal(size=(150, 8))
    first = stability(x, 4)
    assert stability(x, 4, seed=0) == first
    assert len({stability(x, 4, seed=s) for s in range(1, 4)} | {first}) > 1


def test_the_rest_of_the_picks_join_the_nearest_group_by_angle_not_by_length():
    """Groups are directions: a long group centre must not attract picks that point towards a short one."""
    from deepfinder_unsup.cluster.rare import _assign_to_nearest_group

    sample = np.array([[10.0, 0.0], [10.0, 0.1], [0.3, 0.4], [0.3, 0.4]])  # group 0 long, group 1 short (0.5)
    groups = np.array([0, 0, 1, 1])
    picks = np.array([[0.7, 0.7], [5.0, 0.5], [0.06, 0.08]])
    assert _assign_to_nearest_group(picks, sample, groups).tolist() == [1, 0, 1]


def test_rare_analysis_runs_the_method_asked_and_summarises_it(rng):
    """``rare_analysis`` gives the chosen rule's groups 1-based (0: in no cluster), its summary counts them, and
    the dendrogram's tree joins the over-clustered centroids (min(30, N / 5) of them) whose sizes add up to N."""
    from scipy.cluster.hierarchy import fcluster

    from deepfinder_unsup.cluster import coassociation_labels, hdbscan_labels, rare_analysis

    x, truth = _blobs(rng, [60, 60, 60, 6], dim=8, spread=0.1)
    x = np.concatenate([x, 3.0 * rng.normal(size=(2, 8))])  # two picks of no structure
    default = rare_analysis(x)
    assert default["summary"]["method"] == "coassociation"
    np.testing.assert_array_equal(default["labels"], coassociation_labels(x, None, 0) + 1)
    found = rare_analysis(x, min_cluster_size=5, method="hdbscan")
    labels = hdbscan_labels(x, 5)
    np.testing.assert_array_equal(found["labels"], labels + 1)
    summary = found["summary"]
    assert summary["method"] == "hdbscan" and summary["min_cluster_size"] == 5
    assert summary["unassigned"] == int(np.sum(labels == -1)) == int(np.sum(found["labels"] == 0))
    assert summary["sizes"] == {c + 1: int(np.sum(labels == c)) for c in set(labels.tolist()) - {-1}}
    assert summary["n_clusters"] == len(summary["sizes"])
    assert rare_analysis(x)["summary"]["min_cluster_size"] == 5  # 1 % of 188, at least 5
    clean = rare_analysis(x[:186])  # the four structures alone
    n_over = min(30, 186 // 5)
    assert clean["tree"].shape == (n_over - 1, 4) and len(clean["group_sizes"]) == n_over
    assert clean["group_sizes"].sum() == 186 and clean["group_sizes"].min() >= 1
    four = fcluster(clean["tree"], 4, criterion="maxclust")  # the tree's top four branches: the structures
    assert sorted(np.bincount(four, weights=clean["group_sizes"])[1:].astype(int).tolist()) == [6, 60, 60, 60]
    with pytest.raises(
        InputError, match=r"^unknown rare-structure method 'dbscan'; choose from coassociation, hdbscan$"
    ):
        rare_analysis(x, method="dbscan")


def test_hdbscan_leaves_the_features_as_they_were_and_warns_nothing(rng):
    """scikit-learn >= 1.8 warns (FutureWarning) when HDBSCAN's ``copy`` is left to its default; the user's
    ``cluster --rare hdbscan`` must print no warning and leave the features it was given unchanged."""
    import warnings

    from deepfinder_unsup.cluster import hdbscan_labels

    x, _ = _blobs(rng, [40, 40, 6], dim=4, spread=0.1)
    before = x.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hdbscan_labels(x, 5)
    np.testing.assert_array_equal(x, before)


def test_rare_class_found_needs_half_of_the_rare_picks_in_a_mostly_rare_cluster():
    from deepfinder_unsup.cluster import rare_class_found

    is_rare = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], bool)
    assert rare_class_found(np.array([5, 5, 0, 1, 2, 2, 2, 2, 2, 2]), is_rare)  # 2 of 4 rare, cluster all rare
    assert not rare_class_found(np.array([5, 6, 7, 1, 2, 2, 2, 2, 2, 2]), is_rare)  # scattered
    assert rare_class_found(np.array([5, 5, 5, 1, 5, 5, 5, 2, 2, 2]), is_rare)  # 3 of 6: half rare
    assert not rare_class_found(np.array([5, 5, 5, 1, 5, 5, 5, 5, 2, 2]), is_rare)  # 3 of 7: not half
    assert not rare_class_found(np.array([-1, -1, -1, -1, 2, 2, 2, 2, 2, 2]), is_rare)  # unassigned is no cluster


def test_the_default_sweep_is_cut_to_a_small_pick_set_and_an_asked_one_is_not(tmp_path, rng):
    """10 picks: the default 2:15 was refused ("k = 10 needs more than 10 particles"); now k = 2..9."""
    from deepfinder_unsup.io.dataset import write_embeddings
    from deepfinder_unsup.pipeline import cluster_to_folder

    objl = [{"tomo_idx": 0, "obj_id": i, "label": 1 + i % 2, "x": 1.0 * i, "y": 0.0, "z": 0.0} for i in range(10)]
    emb = rng.normal(size=(10, 32))
    emb[7] = emb[8]  # 9 different embeddings among 10: k = 9 still possible
    path = write_embeddings(tmp_path / "emb.h5", emb, objl, 10.0, 40)
    doc, _ = cluster_to_folder(path, None, tmp_path / "out", report=False)
    assert [row["k"] for row in doc["per_k"]] == list(range(2, 10))
    assert (tmp_path / "out" / "clusters_k9.xml").exists() and not (tmp_path / "out" / "clusters_k10.xml").exists()
    emb[6] = emb[8]  # 8 different: k = 9 would need 9
    path = write_embeddings(tmp_path / "emb8.h5", emb, objl, 10.0, 40)
    assert [r["k"] for r in cluster_to_folder(path, None, tmp_path / "o8", report=False)[0]["per_k"]][-1] == 8
    with pytest.raises(InputError, match=r"emb\.h5: k = 10 needs more than 10 particles"):
        cluster_to_folder(tmp_path / "emb.h5", "2:15", tmp_path / "asked", report=False)
    with pytest.raises(InputError, match=r"emb\.h5: --report-k 12 needs more than 10 different particles"):
        cluster_to_folder(tmp_path / "emb.h5", None, tmp_path / "r12", report=False, report_k=12)
    two = write_embeddings(tmp_path / "two.h5", emb[:2], objl[:2], 10.0, 40)
    with pytest.raises(InputError, match=r"two\.h5: k = 2 needs more than 2 particles"):
        cluster_to_folder(two, None, tmp_path / "o2", report=False)


def test_an_overwritten_cluster_folder_holds_only_the_new_runs_outputs(tmp_path, rng):
    """--overwrite with fewer k and no report: the earlier run's clusters_k5/k6 files, report and figures sat beside
    the new ones as if they were its own (a script over clusters_k*.star took them); now removed. A file of the
    user's own in the folder stays. Without the earlier run's list, its files are moved aside, not removed."""
    from deepfinder_unsup.io.dataset import write_embeddings
    from deepfinder_unsup.pipeline import cluster_to_folder

    objl = [{"tomo_idx": 0, "obj_id": i, "label": 1 + i % 3, "x": 1.0 * i, "y": 0.0, "z": 0.0} for i in range(60)]
    emb = rng.normal(size=(3, 8))[np.arange(60) % 3] * 3 + rng.normal(size=(60, 8))
    path = write_embeddings(tmp_path / "emb.h5", emb, objl, 10.0, 40)
    out = tmp_path / "out"
    cluster_to_folder(path, "2:6", out, report=True, report_k=3)
    assert (out / "clusters_k6.star").exists() and (out / "report.html").exists() and list(out.glob("figures/*"))
    (out / "notes.txt").write_text("mine")
    (out / "figures" / "my_plot.png").write_text("mine")  # --out . in a project with figures of its own
    cluster_to_folder(path, "2:3", out, report=False, overwrite=True)
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    assert names == [
        "cluster_outputs.txt",
        "clusters.csv",
        "clusters_k2.star",
        "clusters_k2.xml",
        "clusters_k3.star",
        "clusters_k3.xml",
        "figures",
        "figures/my_plot.png",
        "metrics.json",
        "notes.txt",
    ]
    (out / "cluster_outputs.txt").unlink()  # a folder from before the lists: its outputs told by name, kept aside
    cluster_to_folder(path, "2", out, report=False, overwrite=True)
    (aside,) = out.glob("earlier_outputs_*")
    assert sorted(p.name for p in aside.iterdir()) == ["clusters_k3.star", "clusters_k3.xml"]
    assert not list(out.glob("clusters_k3*")) and (out / "notes.txt").exists() and (out / "clusters_k2.star").exists()


def test_cluster_average_with_no_cluster_big_enough_keeps_the_clustering(tmp_path, rng, caplog):
    """--average at a k whose clusters are all under 4 particles: the clustering is written, no average tried; a
    source tomogram that is gone is refused before the sweep (it failed after it)."""
    from deepfinder_unsup.io.dataset import write_embeddings
    from deepfinder_unsup.io.mrc import write_mrc
    from deepfinder_unsup.pipeline import cluster_to_folder

    tomogram = str(tmp_path / "t.mrc")
    objl = [{"tomo_idx": 0, "label": 1, "x": 1.0 * i, "y": 0.0, "z": 0.0, "source": tomogram} for i in range(10)]
    path = write_embeddings(tmp_path / "emb.h5", rng.normal(size=(10, 32)), objl, 10.0, 40)
    with pytest.raises(InputError, match=r"emb\.h5: source tomogram .*t\.mrc not found"):
        cluster_to_folder(path, "2,9", tmp_path / "out", report=False, report_k=9, average=True)
    assert not (tmp_path / "out").exists()
    write_mrc(np.zeros((16, 16, 16), np.float32), tomogram, 10.0)
    with caplog.at_level("WARNING", logger="deepfinder_unsup"):
        cluster_to_folder(path, "2,9", tmp_path / "out", report=False, report_k=9, average=True)
    assert "k = 9: no cluster has the 4 particles an average needs; no averages" in caplog.text
    assert (tmp_path / "out" / "clusters_k9.xml").exists() and not (tmp_path / "out" / "averages_k9").exists()


def test_embeddings_that_cannot_be_clustered_are_refused_by_row_and_k():
    from deepfinder_unsup.cluster import check_clusterable

    x = np.random.default_rng(0).normal(size=(5, 4))
    check_clusterable(x, [2, 4])  # k up to N - 1
    with pytest.raises(InputError, match=r"^e\.h5: k = 5 needs more than 5 particles \(k must be below the number"):
        check_clusterable(x, [2, 5, 6], "e.h5")
    with pytest.raises(InputError, match=r"^embeddings: no embeddings to cluster$"):
        check_clusterable(x[:0], [2])
    check_clusterable(x[:1], [])  # one particle and no k: nothing to refuse
    with pytest.raises(InputError, match=r"^e\.h5: k = 1: clustering needs k of at least 2"):
        check_clusterable(x, [1, 2], "e.h5")  # was KMeans' own parameter error (k = 0) or every score None (1)
    same = np.ones((6, 4))
    with pytest.raises(InputError, match=r"^e\.h5: all 6 embeddings are the same vector: nothing tells"):
        check_clusterable(same, [2], "e.h5")  # k-means had "clustered" them, every score None
    duplicated = np.concatenate([x[:3], x[:3]])  # 6 particles, 3 different embeddings
    check_clusterable(duplicated, [2, 3])
    with pytest.raises(InputError, match=r"^e\.h5: k = 4 needs 4 different embeddings; there are 3 among 6"):
        check_clusterable(duplicated, [2, 4], "e.h5")
    x[[1, 3], 2] = [np.nan, np.inf]
    with pytest.raises(InputError, match=r"^e\.h5: 2 embedding\(s\) hold NaN or inf \(first: row 1\); re-embed"):
        check_clusterable(x, [2], "e.h5")


def test_label_free_scores_name_each_index_and_are_nan_for_one_cluster(rng):
    """Two tight groups far apart: silhouette near 1, Davies-Bouldin near 0, Calinski-Harabasz large; one
    cluster has no such scores (NaN, written as null)."""
    from deepfinder_unsup.cluster import label_free_scores

    x, truth = _blobs(rng, [30, 30], dim=4, spread=0.01)
    scores = label_free_scores(x, truth)
    assert set(scores) == {"silhouette", "calinski_harabasz", "davies_bouldin"}
    assert scores["silhouette"] > 0.99 and scores["davies_bouldin"] < 0.01 and scores["calinski_harabasz"] > 1e4
    assert scores["silhouette"] == pytest.approx(metrics.silhouette_score(x, truth))
    one = label_free_scores(x, np.zeros(60, int))
    assert set(one) == set(scores) and all(np.isnan(v) for v in one.values())


def test_cluster_once_methods_their_defaults_and_size_limits(rng, monkeypatch):
    """k-means by default; mini-batch k-means beyond MINIBATCH_ABOVE particles, finding the same groups;
    agglomerative refused beyond AGGLOMERATIVE_MAX (its memory is N^2); an unknown method named."""
    from sklearn.cluster import KMeans, MiniBatchKMeans

    from deepfinder_unsup import cluster

    x, truth = _blobs(rng, [40, 40, 40], dim=6, spread=0.2)
    labels, est = cluster_once(x, 3)
    assert isinstance(est, KMeans) and metrics.adjusted_rand_score(truth, labels) == 1.0
    np.testing.assert_array_equal(cluster_once(x, 3, seed=0)[0], labels)
    monkeypatch.setattr(cluster.sweep, "MINIBATCH_ABOVE", 100)
    labels, est = cluster_once(x, 3)
    assert isinstance(est, MiniBatchKMeans) and est.n_clusters == 3
    assert metrics.adjusted_rand_score(truth, labels) == 1.0
    monkeypatch.setattr(cluster.sweep, "AGGLOMERATIVE_MAX", 100)
    with pytest.raises(
        InputError, match=r"^agglomerative clustering of 120 particles needs O\(N\^2\) memory; use kmeans"
    ):
        cluster_once(x, 3, "agglomerative")
    assert metrics.adjusted_rand_score(truth[:100], cluster_once(x[:100], 3, "agglomerative")[0]) == 1.0
    with pytest.raises(
        InputError, match=r"^unknown clustering method 'dbscan'; choose from kmeans, gmm, agglomerative$"
    ):
        cluster_once(x, 3, "dbscan")


def test_group_sizes_the_rare_rules_keep_and_how_they_number_them():
    """The smallest group kept is 1 % of the picks, at least 5; groups of exactly that size are kept, renumbered
    0.. from the largest, equal sizes by group id; smaller ones become -1."""
    from deepfinder_unsup.cluster import default_min_cluster_size
    from deepfinder_unsup.cluster.rare import _small_groups_unassigned

    assert [default_min_cluster_size(n) for n in (10, 599, 600, 1099, 1100)] == [5, 5, 6, 10, 11]
    groups = np.array([7] * 5 + [3] * 9 + [9] * 4 + [1] * 5 + [2] * 9)
    renumbered = {2: 0, 3: 1, 1: 2, 7: 3, 9: -1}  # 9 picks: ids 2, 3; 5 picks: ids 1, 7; 4 picks: dropped
    np.testing.assert_array_equal(_small_groups_unassigned(groups, 5), [renumbered[g] for g in groups])


def test_select_k_skips_undefined_scores_and_prefers_the_smaller_k_on_ties():
    per_k = [{"k": 2, "eigengap": float("nan")}, {"k": 3, "eigengap": 0.5}, {"k": 4, "eigengap": 0.5}]
    assert select_k(per_k) == 3
    assert select_k([{"k": 2, "eigengap": float("nan")}, {"k": 3, "eigengap": 0.0}]) == 3
    with pytest.raises(InputError, match="no k was clustered"):
        select_k([])  # was max()'s "empty sequence"


def test_cluster_labels_must_match_the_objects_one_to_one():
    """``clustered_objl`` zipped the two: a label list one short dropped the last object without a word."""
    from deepfinder_unsup.cluster import clustered_objl
    from deepfinder_unsup.io.objl import new_object

    objl = [new_object(1, i, 0, 0) for i in range(3)]
    assert [o["label"] for o in clustered_objl(objl, np.array([2, 1, 2]))] == [2, 1, 2]
    with pytest.raises(InputError, match="3 objects but 2 cluster labels"):
        clustered_objl(objl, np.array([2, 1]))


def test_reclustering_keeps_the_first_true_class(tmp_path):
    """Clustering a clustered list again does not overwrite the true class with the previous cluster."""
    from deepfinder_unsup.cluster import clustered_objl, write_metrics
    from deepfinder_unsup.io.objl import new_object

    first = clustered_objl([new_object(4, 0, 0, 0, class_name="ribosome")], np.array([2]))
    again = clustered_objl(first, np.array([5]))[0]
    assert (again["true_label"], again["true_class_name"], again["label"], again["class_name"]) == (
        4,
        "ribosome",
        5,
        "cluster5",
    )
    path = write_metrics({"k": 3, "score": float("nan")}, tmp_path / "m.json")
    assert path.read_text() == '{\n  "k": 3,\n  "score": null\n}'  # strict, indented JSON
    with pytest.raises(FileExistsError, match="m.json"):
        write_metrics({"k": 4}, path)
