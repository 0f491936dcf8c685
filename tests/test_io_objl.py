"""DeepFinder XML object lists: the shared files, round trips (also through DeepFinder's own reader), errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from deepfinder_unsup.io import InputError, read_objl, write_objl
from deepfinder_unsup.io.objl import OBJL_KEYS, new_object, objl_get_class, objl_get_tomo

from .conftest import shared_file

SHARED_COUNTS = {"object_list_train.xml": 22446, "object_list_valid.xml": 2490, "object_list_tomo0.xml": 2498}


@pytest.mark.parametrize("name,count", sorted(SHARED_COUNTS.items()))
def test_shared_object_lists_read_with_deepfinder_keys(name, count):
    objl = read_objl(shared_file(f"deepfinder/examples/{name}"))
    assert len(objl) == count
    assert set(objl[0]) == set(OBJL_KEYS)
    assert all(isinstance(o["label"], int) and isinstance(o["x"], float) for o in objl)


def test_shared_object_list_round_trip(tmp_path):
    objl = read_objl(shared_file("deepfinder/examples/object_list_valid.xml"))
    write_objl(objl, tmp_path / "out.xml")
    assert read_objl(tmp_path / "out.xml") == objl


def test_first_object_values():
    first = read_objl(shared_file("deepfinder/examples/object_list_train.xml"))[0]
    assert first == {
        "tomo_idx": 0,
        "obj_id": None,
        "label": 11,
        "x": 46.0,
        "y": 261.0,
        "z": 144.0,
        "psi": 20.0,
        "phi": -142.0,
        "the": 83.0,
        "cluster_size": None,
    }


def test_unknown_attributes_and_float_scores_survive(tmp_path):
    path = tmp_path / "in.xml"
    path.write_text(
        '<objlist>\n<object class_label="3" x="1.5" y="2" z="3" cluster_size="0.875" '
        'score_model="abc" tomo_idx="1"/>\n</objlist>\n'
    )
    objl = read_objl(path)
    assert objl[0]["cluster_size"] == 0.875 and objl[0]["score_model"] == "abc" and objl[0]["tomo_idx"] == 1
    write_objl(objl, tmp_path / "out.xml")
    assert read_objl(tmp_path / "out.xml") == objl


@pytest.mark.parametrize(
    "text,value", [("12", 12), ("-3", -3), ("12.0", 12.0), ("1e2", 100.0), ("1E2", 100.0), ("0.5", 0.5)]
)
def test_scores_keep_the_type_their_text_has(tmp_path, text, value):
    """DeepFinder's integer cluster sizes stay int; a score written with a point or an exponent stays float,
    so a list read and written back says what it said."""
    path = tmp_path / "in.xml"
    path.write_text(f'<objlist><object class_label="1" x="1" y="2" z="3" cluster_size="{text}"/></objlist>')
    score = read_objl(path)[0]["cluster_size"]
    assert score == value and type(score) is type(value)


def test_missing_required_attribute_names_file_line_and_attribute(tmp_path):
    path = tmp_path / "bad.xml"
    path.write_text(
        '<objlist>\n<object class_label="1" x="1" y="2" z="3"/>\n<object class_label="1" x="1" y="2"/>\n</objlist>\n'
    )
    with pytest.raises(InputError, match=r"bad\.xml: line 3: .*'z'"):
        read_objl(path)


def test_non_numeric_value_names_file_line_and_attribute(tmp_path):
    path = tmp_path / "bad.xml"
    path.write_text('<objlist>\n<object class_label="1" x="1" y="two" z="3"/>\n</objlist>\n')
    with pytest.raises(InputError, match=r"bad\.xml: line 2: attribute 'y' must be a finite number, got 'two'"):
        read_objl(path)


@pytest.mark.parametrize(
    "attrs,message",
    [
        ('class_label="1e400" x="1" y="2" z="3"', "'class_label' must be an integer"),
        ('class_label="1" tomo_idx="1e400" x="1" y="2" z="3"', "'tomo_idx' must be an integer"),
        ('class_label="1.5" x="1" y="2" z="3"', "'class_label' must be an integer"),
        ('class_label="1" x="nan" y="2" z="3"', "'x' must be a finite number"),
        ('class_label="1" x="1" y="inf" z="3"', "'y' must be a finite number"),
        ('class_label="1" x="1" y="2" z="3" psi="10"', "phi, the missing"),
        ('class_label="1" x="1" y="2" z="3" psi="nan" phi="1" the="2"', "'psi' must be a finite number"),
    ],
)
def test_out_of_range_values_are_refused_naming_the_attribute(tmp_path, attrs, message):
    path = tmp_path / "bad.xml"
    path.write_text(f"<objlist>\n<object {attrs}/>\n</objlist>\n")
    with pytest.raises(InputError, match=r"bad\.xml: line 2: .*" + message):
        read_objl(path)


def test_not_xml_and_wrong_root(tmp_path):
    (tmp_path / "a.xml").write_text("not xml at all <")
    with pytest.raises(InputError, match="a.xml: not a valid XML"):
        read_objl(tmp_path / "a.xml")
    (tmp_path / "b.xml").write_text("<particles/>")
    with pytest.raises(InputError, match="b.xml: root element is <particles>"):
        read_objl(tmp_path / "b.xml")
    with pytest.raises(FileNotFoundError, match="missing.xml"):
        read_objl(tmp_path / "missing.xml")


def test_write_refuses_to_overwrite(tmp_path):
    objl = [new_object(1, 1, 2, 3)]
    write_objl(objl, tmp_path / "o.xml")
    before = (tmp_path / "o.xml").read_bytes()
    with pytest.raises(FileExistsError, match="o.xml"):
        write_objl([new_object(2, 5, 5, 5)], tmp_path / "o.xml")
    assert (tmp_path / "o.xml").read_bytes() == before
    write_objl([new_object(2, 5, 5, 5)], tmp_path / "o.xml", overwrite=True)
    assert read_objl(tmp_path / "o.xml")[0]["label"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["o.xml"]  # no temporary file left behind


@pytest.fixture(scope="session")
def deepfinder_python():
    """This interpreter, when it can import the original DeepFinder's object-list module (cryoet-deepfinder
    0.2.1, installed by .ci/run with ``pip install --no-deps``; nothing is downloaded by the tests)."""
    proc = subprocess.run(
        [sys.executable, "-c", "from deepfinder.utils import objl"], capture_output=True, text=True, timeout=120
    )
    if proc.returncode != 0:
        pytest.skip(
            "the original DeepFinder is not installed (pip install --no-deps cryoet-deepfinder==0.2.1 "
            f"openpyxl): {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ''}"
        )
    return sys.executable


def test_written_lists_read_back_by_deepfinder(tmp_path, deepfinder_python):
    objl = read_objl(shared_file("deepfinder/examples/object_list_tomo0.xml"))
    objl[0]["obj_id"], objl[0]["cluster_size"] = 7, 12
    write_objl(objl, tmp_path / "ours.xml")
    script = "import json,sys; from deepfinder.utils import objl as ol; print(json.dumps(ol.read_xml(sys.argv[1])))"
    proc = subprocess.run(
        [str(deepfinder_python), "-c", script, str(tmp_path / "ours.xml")], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    theirs = json.loads(proc.stdout)
    assert theirs == objl


def test_objects_of_one_tomogram_or_one_class_keep_their_order():
    """DeepFinder's get_tomo / get_class: a filter by equality, order kept, other keys untouched."""
    objl = [
        new_object(c, float(i), 0, 0, tomo_idx=t, obj_id=i) for i, (c, t) in enumerate([(1, 0), (2, 1), (1, 1), (3, 0)])
    ]
    assert [o["obj_id"] for o in objl_get_tomo(objl, 1)] == [1, 2]
    assert [o["obj_id"] for o in objl_get_tomo(objl, 0)] == [0, 3]
    assert [o["obj_id"] for o in objl_get_class(objl, 1)] == [0, 2]
    assert objl_get_class(objl, 4) == [] and objl_get_tomo(objl, 2) == []
