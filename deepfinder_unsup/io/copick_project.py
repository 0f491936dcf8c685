"""copick projects (``pip install copick``): picks and tomograms in, one pick set per cluster out.

copick is how cryo-ET projects and the CZ cryo-ET Data Portal exchange picks and OME-Zarr tomograms. Reading:
the picks of one pickable object (optionally of one user / session, some runs), and each run's tomogram at the
voxel spacing closest to the one asked for (level 0 of its OME-Zarr), copied once into an MRC file so the
memory-mapped extraction of ``extract`` reads it like any tomogram. Positions are Å in copick, voxels (x, y, z)
in object lists; copick's 4x4 ``transformation`` holds the particle's active rotation, kept as DeepFinder
angles. Writing: one pick set per cluster (``user_id`` ``deepfinder-unsup``, ``session_id`` ``k{K}-cluster{C}``),
positions in Å and orientations as they came.

A Data Portal project is opened the same way, through copick's own configuration for it (see docs/usage.md).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .files import InputError
from .mrc import write_mrc
from .objl import Objl, new_object

USER_ID = "deepfinder-unsup"


def _require_copick():
    try:
        import copick
    except ImportError:
        raise InputError("--copick needs the copick package: pip install copick") from None
    return copick


def open_project(config: str | os.PathLike):
    """The copick root of a configuration file, with a clear error naming it."""
    copick = _require_copick()
    if not Path(config).is_file():
        raise FileNotFoundError(f"{config}: copick configuration not found")
    try:
        return copick.from_file(str(config))
    except Exception as exc:
        raise InputError(f"{config}: not a usable copick configuration ({type(exc).__name__}: {exc})") from None


def closest_spacing(run, voxel_size: float):
    """The run's voxel spacing closest to ``voxel_size`` (Å)."""
    spacings = list(run.voxel_spacings)
    if not spacings:
        raise InputError(f"copick run {run.name}: no voxel spacing (no tomogram)")
    return min(spacings, key=lambda vs: abs(float(vs.voxel_size) - voxel_size))


def read_copick_picks(
    config: str | os.PathLike,
    object_name: str,
    cache_dir: str | os.PathLike,
    voxel_size: float = 10.0,
    user_id: str | None = None,
    session_id: str | None = None,
    runs: Sequence[str] | None = None,
    tomo_type: str | None = None,
) -> tuple[Objl, list[str]]:
    """(object list in voxels with ``tomo_idx`` into the tomogram list, tomogram MRC paths under ``cache_dir``).

    Objects keep ``copick_run``, ``copick_object``, ``copick_voxel_size`` (the spacing the voxels refer to)."""
    from scipy.spatial.transform import Rotation

    from ..geometry import deepfinder_angles

    root = open_project(config)
    wanted = set(runs) if runs else None
    objl: Objl = []
    tomograms: list[str] = []
    for run in root.runs:
        if wanted is not None and run.name not in wanted:
            continue
        picks = run.get_picks(object_name=object_name, user_id=user_id, session_id=session_id)
        points = [p for pick_set in picks for p in (pick_set.points or [])]
        if not points:
            continue
        spacing = closest_spacing(run, voxel_size)
        vs = float(spacing.voxel_size)
        tomos = [t for t in spacing.tomograms if tomo_type is None or t.tomo_type == tomo_type]
        if not tomos:
            raise InputError(
                f"copick run {run.name}: no tomogram{f' of type {tomo_type}' if tomo_type else ''} at {vs:g} Å"
            )
        path = Path(cache_dir) / f"{run.name}_{tomos[0].tomo_type}_{vs:g}A.mrc"
        write_mrc(np.asarray(tomos[0].numpy(), np.float32), path, vs, overwrite=True)
        idx = len(tomograms)
        tomograms.append(str(path))
        for p in points:
            matrix = np.asarray(p.transformation, float)[:3, :3]
            phi, the, psi = deepfinder_angles(Rotation.from_matrix(matrix))
            obj = new_object(
                1,
                p.location.x / vs,
                p.location.y / vs,
                p.location.z / vs,
                tomo_idx=idx,
                obj_id=len(objl),
                phi=float(phi),
                the=float(the),
                psi=float(psi),
            )
            obj.update(copick_run=run.name, copick_object=object_name, copick_voxel_size=vs, tomo_name=run.name)
            objl.append(obj)
    if not objl:
        who = "".join(f" by {k} {v}" for k, v in (("user", user_id), ("session", session_id)) if v)
        raise InputError(f"{config}: no picks of {object_name!r}{who} in the selected runs")
    return objl, tomograms


def check_copick_origin(objl: Objl, config: str | os.PathLike):
    """The project's root, once every object is known to come from a copick project (``embed --copick``): clusters
    can only be written back where their picks came from (checked before clustering)."""
    missing = [i for i, o in enumerate(objl) if not o.get("copick_run")]
    if missing:
        raise InputError(
            f"{config}: object {missing[0]} of the embeddings did not come from a copick project (embed --copick): "
            f"no run to write its cluster to"
        )
    return open_project(config)


def write_copick_clusters(
    config: str | os.PathLike, objl: Objl, clusters: np.ndarray, k: int, overwrite: bool = False
) -> list[tuple[str, str, int]]:
    """One pick set per (run, cluster): user ``deepfinder-unsup``, session ``k{K}-cluster{C}``; returns
    (run, session, number of points) written. Objects must come from ``read_copick_picks``."""
    from copick.models import CopickLocation, CopickPoint

    from ..geometry import rotation_from_deepfinder_angles

    root = check_copick_origin(objl, config)
    written = []
    groups: dict[tuple[str, int], list[int]] = {}
    for i, (obj, c) in enumerate(zip(objl, clusters)):
        groups.setdefault((str(obj["copick_run"]), int(c)), []).append(i)
    for (run_name, c), members in sorted(groups.items()):
        run = root.get_run(run_name)
        if run is None:
            raise InputError(f"{config}: run {run_name!r} is not in the project")
        session = f"k{k}-cluster{c}"
        object_name = str(objl[members[0]]["copick_object"])
        existing = run.get_picks(object_name=object_name, user_id=USER_ID, session_id=session)
        if existing and not overwrite:
            raise FileExistsError(f"{config}: run {run_name} already has picks {USER_ID}/{session}; pass --overwrite")
        picks = existing[0] if existing else run.new_picks(object_name, session, USER_ID)
        points = []
        for i in members:
            o = objl[i]
            vs = float(o["copick_voxel_size"])
            transform = np.eye(4)
            if o.get("phi") is not None:
                transform[:3, :3] = rotation_from_deepfinder_angles(o["phi"], o["the"], o["psi"]).as_matrix()
            points.append(
                CopickPoint(
                    location=CopickLocation(x=o["x"] * vs, y=o["y"] * vs, z=o["z"] * vs),
                    transformation_=transform.tolist(),
                )
            )
        picks.points = points
        picks.store()
        written.append((run_name, session, len(points)))
    return written
