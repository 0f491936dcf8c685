"""The bad-input battery: one case per known way to get input wrong, through the CLI's ``main()`` in-process (the
suite's time), and a few cases as a user runs it (a subprocess: what the program prints, TensorFlow's start-up
included, and the status it exits with).

Each case checks: the exit status (1 bad input, 2 bad usage), exactly one line on stderr that names the file
(or option) and the problem, no traceback, and nothing under the output's final name. ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deepfinder_unsup.io.dataset import write_embeddings
from deepfinder_unsup.io.mrc import write_mrc
from deepfinder_unsup.io.objl import new_object, write_objl

ENV = {**{k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}, "TQDM_DISABLE": "1"}  # as users run it


def run_cli(*args, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "deepfinder_unsup.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENV,
        cwd=cwd,
    )


def run_main(capfd, *args) -> subprocess.CompletedProcess:
    """``main()`` in this process, its status and its stdout / stderr (file descriptors too) as ``run_cli``'s."""
    from deepfinder_unsup.cli import main

    capfd.readouterr()
    try:
        status = main([str(a) for a in args])
    except SystemExit as exit_:  # argparse's usage errors
        status = exit_.code
    out, err = capfd.readouterr()
    return subprocess.CompletedProcess(list(args), status, out, err)


def stderr_lines(proc) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith("warning:")]


def assert_bad_input(proc, *needles: str, absent: tuple[Path, ...] = ()) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = stderr_lines(proc)
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    for path in absent:
        assert not Path(path).exists(), f"{path} was written"


def assert_bad_usage(proc, *needles: str) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    last = stderr_lines(proc)[-1]
    assert "error:" in last
    for needle in needles:
        assert needle in last, (needle, last)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict:
    """Small valid inputs and their broken variants."""
    d = tmp_path_factory.mktemp("battery")
    rng = np.random.default_rng(0)
    tomo = rng.standard_normal((64, 64, 64)).astype(np.float32)
    write_mrc(tomo, d / "tomo.mrc", 10.0)
    write_mrc(np.full((64, 64, 64), np.nan, np.float32), d / "nan.mrc", 10.0)
    inf = tomo.copy()
    inf[30:34, 30:34, 30:34] = np.inf
    write_mrc(inf, d / "inf.mrc", 10.0)
    write_mrc(np.zeros((64, 64, 64), np.float32), d / "zeros.mrc", 10.0)
    (d / "corrupt.mrc").write_bytes(b"not an mrc file at all" * 10)
    objl = [new_object(1, 32, 32, 32, tomo_idx=0), new_object(2, 30, 31, 33, tomo_idx=0)]
    write_objl(objl, d / "picks.xml")
    (d / "psi_only.xml").write_text('<objlist><object class_label="1" x="32" y="32" z="32" psi="3"/></objlist>')
    (d / "big_label.xml").write_text('<objlist><object class_label="1e400" x="32" y="32" z="32"/></objlist>')
    (d / "big_tomo.xml").write_text(
        '<objlist><object tomo_idx="1e400" class_label="1" x="32" y="32" z="32"/></objlist>'
    )
    write_objl([new_object(1, 32, 32, 32, tomo_idx=0), new_object(1, 30, 30, 30, tomo_idx=1)], d / "two_tomos.xml")
    write_objl([new_object(1, 32, 32, 32), new_object(1, 30, 30, 30)], d / "no_idx.xml")
    (d / "backwards.json").write_text('{"tilt_min": [-20, -60]}')
    (d / "nan_angles.xml").write_text(
        '<objlist><object class_label="1" x="32" y="32" z="32" phi="nan" psi="1" the="2"/></objlist>'
    )

    def star(name, rows, cols=("rlnTomoName", "rlnCoordinateX", "rlnCoordinateY", "rlnCoordinateZ", "rlnClassNumber")):
        text = "data_particles\n\nloop_\n" + "".join(f"_{c} #{i + 1}\n" for i, c in enumerate(cols))
        text += "".join(" ".join(map(str, r)) + "\n" for r in rows)
        (d / name).write_text(text)

    star("two_tomos.star", [("tomo", 32, 32, 32, 1), ("other", 30, 30, 30, 1)])
    star("text_coord.star", [("tomo", "abc", 32, 32, 1)])
    star("text_class.star", [("tomo", 32, 32, 32, "x")])
    star("nan_class.star", [("tomo", 32, 32, 32, "nan")])
    star("inf_class.star", [("tomo", 32, 32, 32, "inf")])
    star("frac_class.star", [("tomo", 32, 32, 32, 1.7)])
    star("good.star", [("tomo", 32, 32, 32, 1)])
    star(
        "no_name.star", [(32, 32, 32, 1)], cols=("rlnCoordinateX", "rlnCoordinateY", "rlnCoordinateZ", "rlnClassNumber")
    )
    sub = d / "subtomos"
    sub.mkdir()
    write_mrc(rng.standard_normal((40, 40, 40)), sub / "a.mrc", 10.0)
    bad = rng.standard_normal((40, 40, 40)).astype(np.float32)
    bad[0, 0, 0] = np.nan
    write_mrc(bad, sub / "b.mrc", 10.0)
    emb_objl = [new_object(1 + i % 2, 10 + i, 20, 20, tomo_idx=0) for i in range(40)]
    write_embeddings(d / "emb.h5", rng.standard_normal((40, 32)), emb_objl, 10.0, 40)
    write_embeddings(d / "emb2.h5", rng.standard_normal((2, 32)), emb_objl[:2], 10.0, 40)
    (d / "a_file").write_text("x")
    import zipfile

    with zipfile.ZipFile(d / "bad_card.keras", "w") as zf:
        zf.writestr("deepfinder_unsup_card.json", "{not json")
    with zipfile.ZipFile(d / "empty_card.keras", "w") as zf:
        zf.writestr("deepfinder_unsup_card.json", "{}")
    return {"dir": d}


def embed_args(d, *extra, out="out.h5"):
    return ("embed", *extra, "--out", d / out)


CASES = {
    # name: (args builder, needles in the one error line)
    "star_two_tomograms_one_mrc": (
        lambda d: embed_args(d, "--star", d / "two_tomos.star", "--tomograms", d / "tomo.mrc"),
        ["two_tomos.star", "2 tomograms"],
    ),
    "nan_tomogram": (
        lambda d: embed_args(d, "--objl", d / "picks.xml", "--tomograms", d / "nan.mrc"),
        ["nan.mrc", "NaN"],
    ),
    "inf_voxels": (
        lambda d: embed_args(d, "--objl", d / "picks.xml", "--tomograms", d / "inf.mrc"),
        ["inf.mrc", "NaN or infinite"],
    ),
    "all_zero_tomogram": (
        lambda d: embed_args(d, "--objl", d / "picks.xml", "--tomograms", d / "zeros.mrc"),
        ["zeros.mrc", "all voxels equal"],
    ),
    "nan_subtomogram": (lambda d: embed_args(d, "--subtomograms", d / "subtomos"), ["b.mrc", "NaN"]),
    "corrupt_mrc_with_star": (
        lambda d: embed_args(d, "--star", d / "good.star", "--tomograms", d / "corrupt.mrc"),
        ["corrupt.mrc", "not a readable MRC"],
    ),
    "corrupt_mrc_with_objl": (
        lambda d: embed_args(d, "--objl", d / "picks.xml", "--tomograms", d / "corrupt.mrc"),
        ["corrupt.mrc", "not a readable MRC"],
    ),
    "star_text_coordinate": (
        lambda d: embed_args(d, "--star", d / "text_coord.star", "--tomograms", d / "tomo.mrc"),
        ["text_coord.star", "rlnCoordinateX", "'abc'"],
    ),
    "star_text_class": (
        lambda d: embed_args(d, "--star", d / "text_class.star", "--tomograms", d / "tomo.mrc"),
        ["text_class.star", "rlnClassNumber"],
    ),
    "star_nan_class": (
        lambda d: embed_args(d, "--star", d / "nan_class.star", "--tomograms", d / "tomo.mrc"),
        ["nan_class.star", "rlnClassNumber", "finite"],
    ),
    "star_inf_class": (
        lambda d: embed_args(d, "--star", d / "inf_class.star", "--tomograms", d / "tomo.mrc"),
        ["inf_class.star", "rlnClassNumber", "finite"],
    ),
    "star_fractional_class": (
        lambda d: embed_args(d, "--star", d / "frac_class.star", "--tomograms", d / "tomo.mrc"),
        ["frac_class.star", "integer"],
    ),
    "objl_label_overflow": (
        lambda d: embed_args(d, "--objl", d / "big_label.xml", "--tomograms", d / "tomo.mrc"),
        ["big_label.xml", "class_label"],
    ),
    "objl_tomo_idx_overflow": (
        lambda d: embed_args(d, "--objl", d / "big_tomo.xml", "--tomograms", d / "tomo.mrc"),
        ["big_tomo.xml", "tomo_idx"],
    ),
    "objl_tomo_idx_beyond_tomograms": (  # was an IndexError while naming the failed unit, and a partial file left
        lambda d: embed_args(d, "--objl", d / "two_tomos.xml", "--tomograms", d / "tomo.mrc"),
        ["two_tomos.xml", "object 1 has tomo_idx 1, but 1 tomogram(s) were given"],
    ),
    "objl_without_tomo_idx_in_two_tomograms": (  # every pick was read from the first tomogram
        lambda d: embed_args(d, "--objl", d / "no_idx.xml", "--tomograms", d / "tomo.mrc", d / "zeros.mrc"),
        ["no_idx.xml", "object 0 has no tomo_idx (2 such in all) but 2 tomograms were given"],
    ),
    "star_without_tomo_name_in_two_tomograms": (  # the same, from a STAR file
        lambda d: embed_args(d, "--star", d / "no_name.star", "--tomograms", d / "tomo.mrc", d / "zeros.mrc"),
        ["no_name.star", "no rlnTomoName (or rlnMicrographName) column, but 2 tomograms were given"],
    ),
    "adapt_tomo_idx_beyond_tomograms": (
        lambda d: ("adapt", "--objl", d / "two_tomos.xml", "--tomograms", d / "tomo.mrc", "--out", d / "a.keras"),
        ["two_tomos.xml", "tomo_idx 1"],
    ),
    "objl_nan_angle": (
        lambda d: embed_args(d, "--objl", d / "nan_angles.xml", "--tomograms", d / "tomo.mrc"),
        ["nan_angles.xml", "phi"],
    ),
    "objl_psi_without_phi_the": (
        lambda d: embed_args(d, "--objl", d / "psi_only.xml", "--tomograms", d / "tomo.mrc"),
        ["psi_only.xml", "phi, the missing"],
    ),
    "missing_objl": (
        lambda d: embed_args(d, "--objl", d / "nope.xml", "--tomograms", d / "tomo.mrc"),
        ["nope.xml", "not found"],
    ),
    "quoted_tomogram_pattern": (  # the shell did not expand it: said, not read as a file name nor guessed
        lambda d: embed_args(d, "--objl", d / "picks.xml", "--tomograms", d / "tomo*.mrc"),
        ["tomo*.mrc", "MRC file not found (a pattern the shell did not expand? name the files)"],
    ),
    "corrupt_card": (
        lambda d: embed_args(
            d, "--objl", d / "picks.xml", "--tomograms", d / "tomo.mrc", "--model", d / "bad_card.keras"
        ),
        ["bad_card.keras", "not valid JSON"],
    ),
    "empty_card": (
        lambda d: embed_args(
            d, "--objl", d / "picks.xml", "--tomograms", d / "tomo.mrc", "--model", d / "empty_card.keras"
        ),
        ["empty_card.keras", "voxel_size"],
    ),
    "unwritable_out": (
        lambda d: ("embed", "--objl", d / "picks.xml", "--tomograms", d / "tomo.mrc", "--out", d / "a_file" / "out.h5"),
        ["a_file"],
    ),
    "two_particles_k2": (lambda d: ("cluster", d / "emb2.h5", "--k", "2", "--out", d / "cl_two"), ["emb2.h5", "k = 2"]),
    "k_backwards": (lambda d: ("cluster", d / "emb.h5", "--k", "5:2", "--out", d / "cl_back"), ["5:2", "backwards"]),
    "k_huge_range": (
        lambda d: ("cluster", d / "emb.h5", "--k", "2:100000000", "--out", d / "cl_huge"),
        ["2:100000000", "at most"],
    ),
    "report_k_outside_range": (
        lambda d: ("cluster", d / "emb.h5", "--k", "2:4", "--report-k", "9", "--out", d / "cl_rk"),
        ["--report-k 9"],
    ),
    "cluster_out_under_a_file": (
        lambda d: ("cluster", d / "emb.h5", "--k", "2:3", "--out", d / "a_file" / "x"),
        ["a_file"],
    ),
    "unknown_builtin": (
        lambda d: ("simulate", "--structures", "builtin:nosuch", "--per-class", "1", "--out", d / "sim_nosuch"),
        ["builtin:nosuch", "unknown built-in"],
    ),
    "bad_procedural_spec": (
        lambda d: ("simulate", "--structures", "procedural:0", "--per-class", "1", "--out", d / "sim_proc0"),
        ["procedural:0"],
    ),
    "config_range_backwards": (  # was an internal error ("high - low < 0") at the first draw
        lambda d: (
            ("simulate", "--structures", "builtin:ring", "--per-class", "1", "--config", d / "backwards.json")
            + ("--out", d / "sim_backwards")
        ),
        ["backwards.json", "tilt_min [-20, -60]", "backwards"],
    ),
}

# outputs that must not exist after the case (relative to the fixture folder)
ABSENT = {"cluster_out_under_a_file": [], "unwritable_out": []}

USAGE_CASES = {
    "batch_size_zero": (
        lambda d: embed_args(d, "--objl", d / "picks.xml", "--tomograms", d / "tomo.mrc", "--batch-size", "0"),
        ["--batch-size", "at least 1"],
    ),
    "per_class_negative": (
        lambda d: ("simulate", "--structures", "builtin", "--per-class", "-3", "--out", d / "s1"),
        ["--per-class", "at least 1"],
    ),
    "per_class_zero": (
        lambda d: ("simulate", "--structures", "builtin", "--per-class", "0", "--out", d / "s2"),
        ["--per-class", "at least 1"],
    ),
    "tomogram_too_small": (
        lambda d: ("simulate-tomogram", "--structures", "builtin", "--shape", "10", "10", "10", "--out", d / "t1"),
        ["--shape", "at least 48"],
    ),
    "negative_particles": (
        lambda d: ("simulate-tomogram", "--structures", "builtin", "--particles", "-5", "--out", d / "t2"),
        ["--particles", "at least 1"],
    ),
    "report_k_one": (lambda d: ("cluster", d / "emb.h5", "--report-k", "1", "--out", d / "c1"), ["--report-k"]),
    "adapt_negative_noise": (
        lambda d: ("adapt", "--dataset", d / "none.h5", "--noise", "-1", "--out", d / "a.keras"),
        ["--noise", ">= 0"],
    ),
    "adapt_one_way_weight_zero": (
        lambda d: ("adapt", "--dataset", d / "none.h5", "--one-way-weight", "0", "--out", d / "a.keras"),
        ["--one-way-weight", "above 0"],
    ),
}


# run as the program: one case that loads the model (TensorFlow's start-up lines must not reach the user), one
# that does not
AS_THE_PROGRAM = ("nan_subtomogram", "objl_nan_angle")


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_gives_one_clear_line(inputs, case, capfd, monkeypatch):
    d = inputs["dir"]
    build, needles = CASES[case]
    args = build(d)
    out = Path(args[args.index("--out") + 1])
    monkeypatch.setenv("TQDM_DISABLE", "1")  # as ENV
    proc = run_cli(*args) if case in AS_THE_PROGRAM else run_main(capfd, *args)
    assert_bad_input(proc, *needles, absent=(out, out.with_name(out.name + ".partial")))
    if out.suffix == "":  # a cluster / simulate output folder: nothing final in it
        finals = [p for p in out.rglob("*") if p.is_file()] if out.is_dir() else []
        assert finals == [], finals


@pytest.mark.parametrize("case", sorted(USAGE_CASES))
def test_bad_usage_exits_2(inputs, case):
    build, needles = USAGE_CASES[case]
    assert_bad_usage(run_cli(*build(inputs["dir"])), *needles)


def test_debug_shows_the_traceback(inputs):
    d = inputs["dir"]
    proc = run_cli("cluster", d / "emb.h5", "--k", "5:2", "--out", d / "dbg", "--debug")
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "InputError" in proc.stderr


def test_cluster_does_not_replace_existing_outputs(inputs, capfd):
    d = inputs["dir"]
    out = d / "cl_keep"
    (out / "figures").mkdir(parents=True)
    (out / "figures" / "embedding_tsne.png").write_bytes(b"user's figure")
    proc = run_main(capfd, "cluster", d / "emb.h5", "--k", "2:3", "--out", out)
    assert_bad_input(proc, "figures", "--overwrite")
    assert (out / "figures" / "embedding_tsne.png").read_bytes() == b"user's figure"
    assert not (out / "metrics.json").exists()


def test_cluster_writes_strict_json_and_group_readable_files(inputs, capfd):
    d = inputs["dir"]
    out = d / "cl_ok"
    old = os.umask(0o002)
    try:
        proc = run_main(capfd, "cluster", d / "emb.h5", "--k", "2:3", "--out", out, "--no-report")
    finally:
        os.umask(old)
    assert proc.returncode == 0, proc.stderr
    json.loads((out / "metrics.json").read_text(), parse_constant=lambda c: pytest.fail(f"bare {c}"))
    mode = (out / "metrics.json").stat().st_mode & 0o777
    assert mode == 0o664, oct(mode)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_a_tomogram_header_of_1_angstrom_is_refused_wherever_a_tomogram_is_read(tmp_path, capsys):
    """1 Å per voxel is what IMOD writes when it does not know the pixel size: read as such, embed extracted 400^3
    voxels per pick (12 CPU minutes and 3.3 GB for the demo's picks before it was stopped, session 50). embed,
    average and simulate --like refuse it in one line; --voxel-size is the way past it."""
    from deepfinder_unsup.cli import main
    from deepfinder_unsup.pipeline.inputs import check_tomogram_headers

    write_mrc(np.zeros((64, 64, 64), np.float32), tmp_path / "imod.mrc", 1.0)
    picks = [new_object(1 + i // 4, 32, 32, 32, tomo_idx=0, source=str(tmp_path / "imod.mrc")) for i in range(8)]
    write_objl(picks, tmp_path / "clusters_k2.xml")
    runs = {
        "embed": ["embed", "--objl", tmp_path / "clusters_k2.xml", "--tomograms", tmp_path / "imod.mrc"],
        "average": ["average", tmp_path / "clusters_k2.xml"],
        "simulate --like": [
            "simulate",
            "--structures",
            "builtin:ring",
            "--per-class",
            "2",
            "--like",
            tmp_path / "imod.mrc",
        ],
    }
    for name, args in runs.items():
        out = tmp_path / name.replace(" ", "_")
        assert main([*map(str, args), "--out", str(out)]) == 1, name
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "imod.mrc: its header says 1 Å per voxel" in err[0], (name, err)
        assert ("alterheader" if name == "simulate --like" else "--voxel-size") in err[0]
        assert not out.exists()
    check_tomogram_headers([tmp_path / "imod.mrc"], 10.0)  # a voxel size given: no refusal
    write_mrc(np.zeros((8, 8, 8), np.float32), tmp_path / "ok.mrc", 1.2)
    check_tomogram_headers([tmp_path / "ok.mrc"], None)  # only the unset value is refused


@pytest.mark.parametrize(
    ("extra", "option", "applies_to"),
    [
        (["--subtomograms", "subs", "--tomograms", "t.mrc"], "--tomograms", "picks (--objl / --star)"),
        (["--dataset", "d.h5", "--tomograms", "t.mrc"], "--tomograms", "picks (--objl / --star)"),
        (["--dataset", "d.h5", "--voxel-size", "13.68"], "--voxel-size", "tomograms and sub-tomogram files"),
        (["--objl", "p.xml", "--tomograms", "t.mrc", "--tomogram-size", "9", "9", "9"], "--tomogram-size", "--star"),
        (["--objl", "p.xml", "--tomograms", "t.mrc", "--tomograms-star", "t.star"], "--tomograms-star", "--star"),
        (["--subtomograms", "subs", "--object", "ribosome"], "--object", "--copick"),
        (["--star", "p.star", "--tomograms", "t.mrc", "--runs", "TS_1"], "--runs", "--copick"),
        (["cluster", "e.h5", "--dataset", "d.h5"], "--dataset", "--average"),
        (["cluster", "e.h5", "--min-cluster-size", "5"], "--min-cluster-size", "--rare"),
        (["train", "--train", "t.h5", "--val", "v.h5", "--sim-config", "c.json"], "--sim-config", "--structures"),
        (["train", "--train", "t.h5", "--val", "v.h5", "--workers", "2"], "--workers", "--structures"),
    ],
)
def test_an_option_the_input_does_not_read_is_a_usage_error(extra, option, applies_to, tmp_path, capsys):
    """Each was ignored without a word (the run did something other than what was asked); now argparse's usage
    error of the subcommand, status 2, before any file is read."""
    from deepfinder_unsup.cli import main

    command = extra if extra[0] in ("cluster", "train") else ["embed", *extra]
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--out", str(tmp_path / "out")])
    assert exit_.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == f"deepfinder-unsup {command[0]}: error: {option} applies to {applies_to} only; it would be ignored"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("command", "hint"),
    [
        (["embed", "picks.xml", "--tomograms", "t.mrc"], "give it with --objl"),
        (["embed", "particles.star", "--tomograms", "t.mrc"], "give it with --star"),
        (["adapt", "dataset.h5"], "give it with --dataset"),
        (["embed", "tomo.mrc", "--objl", "p.xml"], "give it with --tomograms (beside --objl or --star picks) or, for"),
        (["train", "runs/x"], "see 'deepfinder-unsup train --help'"),
    ],
)
def test_a_file_given_without_its_option_is_named_in_the_usage_error(command, hint, tmp_path, capsys):
    """``embed picks.xml`` (as ``cluster emb.h5``): argparse said only that one of --objl ... --copick is required,
    never naming the file; now the usage error names it and the option that kind of file goes with."""
    from deepfinder_unsup.cli import main

    with pytest.raises(SystemExit) as exit_:
        main([*command, "--out", str(tmp_path / "out")])
    assert exit_.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    stray, name = command[1], command[0]
    assert last.startswith(
        f"deepfinder-unsup {name}: error: {stray}: {name} takes its inputs by option, not by position; "
    )
    assert hint in last and not (tmp_path / "out").exists()


def test_a_positional_argument_where_the_subcommand_takes_one_is_not_refused(tmp_path, capsys):
    """cluster's embeddings and info's model are positional: the check leaves them to argparse."""
    from deepfinder_unsup.cli import main

    assert main(["cluster", str(tmp_path / "absent.h5"), "--out", str(tmp_path / "out")]) == 1
    assert "absent.h5: embeddings file not found" in capsys.readouterr().err
