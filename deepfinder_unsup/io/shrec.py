"""SHREC'19 / SHREC'21 ground truth (``particle_locations*.txt``) and ``model_N/`` folders.

Each line reads ``PDBID x y z a1 a2 a3``: coordinates in voxels, ZXZ Euler angles in degrees stored here as
DeepFinder's ``phi=a1, the=a2, psi=a3``. Vesicles and fiducials have NaN angles (orientation None).
Labels are SHREC'21's class ids; the two SHREC'19 classes absent from SHREC'21 get ids 16 (4b4t) and 17 (4d8q).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from .files import InputError, atomic_path, require_file
from .objl import Objl, new_object

SHREC21_CLASSES = {
    "4v94": 1,
    "4cr2": 2,
    "1qvr": 3,
    "1bxn": 4,
    "3cf3": 5,
    "1u6g": 6,
    "3d2f": 7,
    "2cg9": 8,
    "3h84": 9,
    "3gl1": 10,
    "3qm1": 11,
    "1s3x": 12,
    "5mrc": 13,
    "vesicle": 14,
    "fiducial": 15,
    "4b4t": 16,
    "4d8q": 17,
}
SHREC21_NAMES = {v: k for k, v in SHREC21_CLASSES.items()}


def read_shrec_locations(path: str | os.PathLike, tomo_idx: int = 0) -> Objl:
    """Read a SHREC ``particle_locations.txt`` into an object list with SHREC'21 class ids."""
    path = require_file(path, "SHREC particle_locations file")
    try:
        text = path.read_text()
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not a text file ({exc.reason} at byte {exc.start})") from None
    objl: Objl = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) not in (4, 7):
            raise InputError(f"{path}: line {lineno}: expected 'PDBID x y z [a1 a2 a3]', got {len(fields)} fields")
        name = fields[0].lower()
        if name not in SHREC21_CLASSES:
            raise InputError(f"{path}: line {lineno}: unknown SHREC class {fields[0]!r}")
        try:
            values = [float(v) for v in fields[1:]]
        except ValueError:
            raise InputError(f"{path}: line {lineno}: non-numeric coordinate or angle") from None
        if not all(math.isfinite(v) for v in values[:3]) or any(math.isinf(a) for a in values[3:]):
            raise InputError(f"{path}: line {lineno}: coordinates must be finite numbers (angles finite or NaN)")
        x, y, z = values[:3]
        angles = values[3:] if len(values) == 6 and not any(math.isnan(a) for a in values[3:]) else None
        phi, the, psi = angles if angles else (None, None, None)
        objl.append(
            new_object(
                SHREC21_CLASSES[name],
                x,
                y,
                z,
                tomo_idx=tomo_idx,
                obj_id=lineno - 1,
                phi=phi,
                the=the,
                psi=psi,
                pdb_id=fields[0],
            )
        )
    return objl


def write_shrec_locations(objl: Objl, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write ``PDBID x y z phi the psi`` lines (NaN angles where the object has none)."""
    lines = []
    for obj in objl:
        name = obj.get("pdb_id") or SHREC21_NAMES.get(obj["label"], f"class{obj['label']}")
        angles = [obj.get(k) for k in ("phi", "the", "psi")]
        angle_txt = " ".join("NaN" if a is None else f"{float(a):.4f}" for a in angles)
        lines.append(f"{name} {obj['x']:.3f} {obj['y']:.3f} {obj['z']:.3f} {angle_txt}")
    with atomic_path(path, overwrite) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return Path(path)


def read_shrec_model(folder: str | os.PathLike, tomo_idx: int = 0) -> tuple[Path, Objl]:
    """A SHREC ``model_N/`` folder -> (reconstructed tomogram path, object list) for training or extraction."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: SHREC model folder not found")
    tomos = sorted(folder.glob("reconstruction*.mrc"))
    locs = sorted(folder.glob("particle_locations*.txt"))
    if not tomos:
        raise InputError(f"{folder}: no reconstruction*.mrc tomogram in this SHREC model folder")
    if not locs:
        raise InputError(f"{folder}: no particle_locations*.txt in this SHREC model folder")
    return tomos[0], read_shrec_locations(locs[0], tomo_idx=tomo_idx)
