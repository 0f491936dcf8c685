"""The report's interactive map in a real headless browser (Debian's chromium): it draws every point, and a
selection becomes a DeepFinder XML object list and a RELION STAR file that our readers take back."""

from __future__ import annotations

import html
import re
import shutil
import subprocess

import numpy as np
import pytest

from deepfinder_unsup.cli import main
from deepfinder_unsup.io import read_objl, read_star, write_embeddings
from deepfinder_unsup.io.objl import new_object

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(BROWSER is None, reason="no chromium on this machine (.ci/run installs Debian's chromium)")
def test_interactive_map_draws_and_a_selection_saves_both_files(tmp_path):
    rng = np.random.default_rng(0)
    centres = np.eye(32)[:3] * 4
    labels = np.repeat([1, 2, 3], 20)
    emb = (centres[labels - 1] + 0.3 * rng.standard_normal((60, 32))).astype(np.float32)
    objl = [
        new_object(int(lab), 10.0 + i, 20.0, 30.0 + i % 7, tomo_idx=0, obj_id=i, phi=10.0 * i, the=30.0, psi=5.0)
        for i, lab in enumerate(labels)
    ]
    for o in objl:
        o["source"] = "tomo/TS_07.mrc"
    slices = rng.standard_normal((60, 2, 40, 40)).astype(np.float16)
    write_embeddings(tmp_path / "e.h5", emb, objl, 10.0, 40, slices=slices)
    assert main(["cluster", str(tmp_path / "e.h5"), "--k", "3", "--evaluate", "--out", str(tmp_path / "c")]) == 0
    url = (tmp_path / "c" / "report.html").as_uri() + "#selftest"
    cmd = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", url]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    assert re.search(r'data-points-drawn="60"', dom), "the map did not draw its 60 points"
    assert re.search(r'<pre id="selftest-own-star"[^>]*></pre>', dom)  # picks from XML: no STAR file of the user's
    xml = html.unescape(re.search(r'<pre id="selftest-xml"[^>]*>(.*?)</pre>', dom, re.S).group(1))
    star = html.unescape(re.search(r'<pre id="selftest-star"[^>]*>(.*?)</pre>', dom, re.S).group(1))
    (tmp_path / "sel.xml").write_text(xml)
    (tmp_path / "sel.star").write_text(star)
    written = read_objl(tmp_path / "c" / "clusters_k3.xml")
    picked = read_objl(tmp_path / "sel.xml")
    assert [(o["obj_id"], o["label"]) for o in picked] == [(o["obj_id"], o["label"]) for o in written]
    assert [o["x"] for o in picked] == [o["x"] for o in objl]
    back = read_star(tmp_path / "sel.star")
    assert [o["label"] for o in back] == [o["label"] for o in written]
    assert {o["tomo_name"] for o in back} == {"TS_07"}
    dphi = np.array([o["phi"] for o in back]) - [o["phi"] for o in objl]
    np.testing.assert_allclose((dphi + 180) % 360 - 180, 0, atol=1e-3)  # the same angles, modulo 360
    import pandas as pd
    import starfile

    mine, written = starfile.read(tmp_path / "sel.star"), starfile.read(tmp_path / "c" / "clusters_k3.star")
    pd.testing.assert_frame_equal(mine, written, check_dtype=False)  # every row of clusters_k3.star, as it wrote it


@pytest.mark.skipif(BROWSER is None, reason="no chromium on this machine (.ci/run installs Debian's chromium)")
def test_a_selection_of_star_picks_saves_as_the_users_own_star_file(tmp_path):
    """Picks from the user's STAR file (an optics table, a column the package never reads): the map's third button
    gives that file cut to the selection, rlnClassNumber = cluster: the same tables as clusters_k3_particles.star."""
    import pandas as pd
    import starfile

    from deepfinder_unsup.io import write_mrc
    from deepfinder_unsup.pipeline import read_star_picks

    rng = np.random.default_rng(1)
    labels = np.repeat([1, 2, 3], 20)
    write_mrc(np.zeros((40, 100, 120), np.float32), tmp_path / "TS_07.mrc", 10.0)
    optics = pd.DataFrame({"rlnOpticsGroup": [1], "rlnOpticsGroupName": ["opticsGroup1"], "rlnImagePixelSize": [10.0]})
    particles = pd.DataFrame(
        {
            "rlnTomoName": ["TS_07"] * 60,
            "rlnCoordinateX": 10.0 + np.arange(60),
            "rlnCoordinateY": np.full(60, 20.0),
            "rlnCoordinateZ": 5.0 + np.arange(60) % 7,
            "rlnAutopickFigureOfMerit": rng.uniform(size=60).round(4),
            "rlnOpticsGroup": np.ones(60, int),
        }
    )
    starfile.write({"optics": optics, "particles": particles}, tmp_path / "picks.star")
    objl = read_star_picks(tmp_path / "picks.star", [str(tmp_path / "TS_07.mrc")])
    objl = [{**o, "source": str(tmp_path / "TS_07.mrc")} for o in objl]  # as extraction records it
    emb = (np.eye(32)[labels - 1] * 4 + 0.3 * rng.standard_normal((60, 32))).astype(np.float32)
    source = {"tomograms": [str(tmp_path / "TS_07.mrc")], "picks": str(tmp_path / "picks.star")}
    write_embeddings(tmp_path / "e.h5", emb, objl, 10.0, 40, extra_attrs={"source": source})
    assert main(["cluster", str(tmp_path / "e.h5"), "--k", "3", "--out", str(tmp_path / "c")]) == 0
    url = (tmp_path / "c" / "report.html").as_uri() + "#selftest"
    cmd = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", url]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    own = html.unescape(re.search(r'<pre id="selftest-own-star"[^>]*>(.*?)</pre>', dom, re.S).group(1))
    (tmp_path / "sel.star").write_text(own)
    mine, written = starfile.read(tmp_path / "sel.star"), starfile.read(tmp_path / "c" / "clusters_k3_particles.star")
    assert list(mine) == ["optics", "particles"] and mine["optics"].equals(written["optics"])
    pd.testing.assert_frame_equal(mine["particles"], written["particles"], check_dtype=False)
    np.testing.assert_allclose(mine["particles"]["rlnAutopickFigureOfMerit"], particles["rlnAutopickFigureOfMerit"])
    package = html.unescape(re.search(r'<pre id="selftest-star"[^>]*>(.*?)</pre>', dom, re.S).group(1))
    (tmp_path / "package.star").write_text(package)
    mine, written = starfile.read(tmp_path / "package.star"), starfile.read(tmp_path / "c" / "clusters_k3.star")
    assert "rlnCenteredCoordinateXAngst" in mine  # the tomogram's header known: RELION 5's coordinates too
    pd.testing.assert_frame_equal(mine, written, check_dtype=False)  # the selection's rows of clusters_k3.star
