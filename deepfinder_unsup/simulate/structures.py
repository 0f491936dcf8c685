"""Macromolecular structures as density maps at the simulation's voxel size.

Sources: density maps (MRC, any voxel size), atomic models (PDB / mmCIF, needs the optional ``gemmi``), and
built-in procedural shapes made by code (no data files). Every structure is
- resampled to the requested voxel size (anti-aliased, see ``extract.resample_volume``),
- centred on its centre of mass, cropped to its support plus a margin,
- scaled consistently: solvent (the map's border median) set to 0, then divided so that the mean density inside
  the molecular envelope (voxels above 10 % of the 99.9th percentile) is 1. Protein is positive.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..io.files import InputError
from ..io.mrc import read_mrc
from ..volume import resample_volume

MAP_SUFFIXES = (".mrc", ".map", ".rec")
ATOMIC_SUFFIXES = (".pdb", ".ent", ".cif", ".mmcif")


BINDINGS = ("free", "surface", "transmembrane")
MEMBRANE_SUFFIX = "@membrane"


@dataclass
class Structure:
    """A density map ``[z, y, x]`` (protein positive, envelope mean 1) at ``voxel_size`` Å.

    ``binding``: ``free`` (soluble), ``surface`` (a soluble structure simulated bound to a bilayer: the class
    ``NAME@membrane``) or ``transmembrane`` (a membrane protein, transmembrane axis along z, bilayer centre at
    ``membrane_z`` voxels from the box centre along z). ``by_code``: made by code (a procedural pseudo-molecule
    or a built-in shape) rather than read from a density map or atomic model.
    """

    name: str
    density: np.ndarray
    voxel_size: float
    binding: str = "free"
    membrane_z: float = 0.0
    by_code: bool = False

    @property
    def radius(self) -> float:
        """Radius (voxels) of the molecular envelope around the box centre."""
        return envelope_radius(self.density)

    def at_voxel_size(
        self, voxel_size: float, rng: np.random.Generator | None = None, wobble: bool = False
    ) -> Structure:
        """The same structure at another voxel size (``wobble``: a flexible copy, where the source allows)."""
        if abs(voxel_size - self.voxel_size) < 1e-6:
            return self
        dens = standardise_density(resample_volume(self.density, self.voxel_size, voxel_size))
        membrane_z = self.membrane_z * self.voxel_size / voxel_size
        return Structure(self.name, dens, voxel_size, self.binding, membrane_z, self.by_code)

    def membrane_bound(self) -> Structure:
        """This soluble structure as the separate class ``NAME@membrane`` (bound to a bilayer's surface)."""
        if self.binding != "free":
            raise InputError(f"{self.name}: only soluble structures get a membrane-bound class")
        bound = copy.copy(self)
        bound.name, bound.binding = self.name + MEMBRANE_SUFFIX, "surface"
        return bound


def envelope_mask(density: np.ndarray) -> np.ndarray:
    """The molecular envelope: voxels above 10 % of the 99.9th percentile."""
    return density > 0.1 * np.percentile(density, 99.9)


def envelope_radius(density: np.ndarray) -> float:
    mask = envelope_mask(density)
    if not mask.any():
        return 1.0
    c = (np.array(density.shape) - 1) / 2.0
    idx = np.argwhere(mask)
    return float(np.sqrt(((idx - c) ** 2).sum(axis=1)).max())


def standardise_density(density: np.ndarray, margin: int = 2) -> np.ndarray:
    """Solvent 0, envelope mean 1, centred on the centre of mass, cropped to the support (+ margin)."""
    d = np.asarray(density, np.float32)
    border = np.concatenate(
        [d[0].ravel(), d[-1].ravel(), d[:, 0].ravel(), d[:, -1].ravel(), d[:, :, 0].ravel(), d[:, :, -1].ravel()]
    )
    d = d - np.median(border)
    _refuse_negative_protein(d)
    mask = envelope_mask(d)
    if not mask.any():
        raise InputError("density map has no positive signal (is protein negative? invert it)")
    d = d / d[mask].mean()
    com = np.array(ndimage.center_of_mass(np.clip(d, 0, None) * mask))
    r = int(np.ceil(envelope_radius_about(d, com))) + margin
    size = 2 * r + 1
    c_out = (size - 1) / 2.0
    d = ndimage.affine_transform(
        d, np.ones(3), offset=com - c_out, output_shape=(size,) * 3, order=1, mode="constant", cval=0.0
    )
    return d.astype(np.float32)


def _refuse_negative_protein(density: np.ndarray) -> None:
    """Refuse a map whose strongest density is negative (protein dark, as in a tomogram or an average of raw
    sub-tomograms): its envelope would be taken from the solvent's noise and simulated as a blob."""
    high, low = np.percentile(density, [99.9, 0.1])
    if -low > high:
        raise InputError(
            f"the strongest density is negative ({low:.3g} at the 0.1th percentile against {high:.3g} at the 99.9th, "
            f"solvent at 0): protein must be positive; invert the map if protein is dark in it"
        )


def envelope_radius_about(density: np.ndarray, center: np.ndarray) -> float:
    idx = np.argwhere(envelope_mask(density))
    return float(np.sqrt(((idx - center) ** 2).sum(axis=1)).max())


def structure_from_map(
    path: str | os.PathLike, voxel_size: float, name: str | None = None, map_voxel_size: float | None = None
) -> Structure:
    """A structure from a density map file (any voxel size; protein must be positive)."""
    path = Path(path)
    vol, vs = read_mrc(path, voxel_size=map_voxel_size)
    vol = resample_volume(vol, vs, voxel_size)
    try:
        dens = standardise_density(vol)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    # where the map's own box centre lies after centring (the bilayer centre of PolNet's aligned membrane maps)
    box_centre_z = -float(centre_of_mass_offset(vol)[0])
    return Structure(name or path.stem.lower(), dens, voxel_size, membrane_z=box_centre_z)


def centre_of_mass_offset(density: np.ndarray) -> np.ndarray:
    """Centre of mass of the envelope's density minus the box centre ``(n - 1) / 2``, voxels ``(z, y, x)``."""
    d = np.asarray(density, np.float32)
    d = d - np.median(np.concatenate([d[0].ravel(), d[-1].ravel()]))
    mask = envelope_mask(d)
    com = np.array(ndimage.center_of_mass(np.clip(d, 0, None) * mask))
    return com - (np.array(d.shape) - 1) / 2.0


def atomic_density(
    path: str | os.PathLike, voxel_size: float, assembly: bool = True, blur: float | None = None
) -> np.ndarray:
    """Electron-scattering density of an atomic model (gemmi's Peng 5-Gaussian factors) on a cubic grid.

    ``assembly``: build the first biological assembly (BIOMT / pdbx_struct_assembly) when the file has one.
    ``blur``: extra B-factor (Å^2) that band-limits the map to the grid, default ``40 * voxel_size^2``
    (a Gaussian of sigma ~0.7 voxel).
    """
    try:
        import gemmi
    except ImportError:
        raise ImportError("atomic models need gemmi: pip install 'deepfinder-unsup[structures]'") from None
    path = Path(path)
    try:
        st = gemmi.read_structure(str(path))
    except Exception as exc:
        raise InputError(f"{path}: not a readable atomic model ({exc})") from None
    st.remove_hydrogens()
    st.remove_waters()
    model = st[0]
    if assembly and len(st.assemblies):
        model = gemmi.make_assembly(st.assemblies[0], model, gemmi.HowToNameCopiedChain.AddNumber)
    pos = np.array([a.pos.tolist() for ch in model for res in ch for a in res])
    if len(pos) == 0:
        raise InputError(f"{path}: the atomic model has no atoms")
    com = pos.mean(axis=0)
    extent = np.sqrt(((pos - com) ** 2).sum(axis=1)).max()
    n = int(np.ceil(2 * extent / voxel_size)) + 8
    length = n * voxel_size
    box = gemmi.Structure()
    box.add_model(model)
    box.cell = gemmi.UnitCell(length, length, length, 90, 90, 90)
    box.spacegroup_hm = "P 1"
    box.setup_cell_images()
    shift = gemmi.Position(*(length / 2.0 - com))
    for ch in box[0]:
        for res in ch:
            for atom in res:
                atom.pos = atom.pos + shift
    calc = gemmi.DensityCalculatorE()
    calc.d_min = 2 * voxel_size
    calc.blur = 40.0 * voxel_size**2 if blur is None else blur
    calc.set_grid_cell_and_spacegroup(box)
    calc.grid.set_size(n, n, n)
    calc.add_model_density_to_grid(box[0])
    calc.grid.symmetrize_sum()
    return np.array(calc.grid, copy=True).transpose(2, 1, 0).astype(np.float32)  # gemmi is [x, y, z]


def structure_from_atoms(
    path: str | os.PathLike, voxel_size: float, name: str | None = None, assembly: bool = True
) -> Structure:
    """A structure from a PDB / mmCIF model, density from atomic scattering factors."""
    path = Path(path)
    return Structure(
        name or path.stem.lower(), standardise_density(atomic_density(path, voxel_size, assembly)), voxel_size
    )


def made_by_code(structure: Structure) -> bool:
    """Whether a structure is made by code (a procedural pseudo-molecule or a built-in shape, on a membrane or
    not) rather than read from a density map or atomic model: what it was made from, never its name."""
    return structure.by_code


# --- built-in procedural shapes -------------------------------------------------------------------------
def _grid(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c = (size - 1) / 2.0
    z, y, x = np.meshgrid(*(np.arange(size) - c,) * 3, indexing="ij")
    return z, y, x


def _segment_distance(p, a, b):
    """Distance of points p (..., 3) to segment a-b (x, y, z, Å)."""
    ab = b - a
    t = np.clip(((p - a) @ ab) / (ab @ ab), 0, 1)
    return np.linalg.norm(p - (a + t[..., None] * ab), axis=-1)


def _tube(points: np.ndarray, radius: float, p: np.ndarray) -> np.ndarray:
    d = np.full(p.shape[:-1], np.inf)
    for a, b in zip(points[:-1], points[1:]):
        d = np.minimum(d, _segment_distance(p, a, b))
    return d <= radius


def _builtin_solid(name: str, p: np.ndarray) -> np.ndarray:
    """Boolean solid of a built-in shape at Å coordinates p (..., 3) = (x, y, z)."""
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    r_xy = np.sqrt(x**2 + y**2)
    if name == "ring":  # torus, C-infinity, 200 Å wide
        return (r_xy - 75) ** 2 + z**2 <= 25**2
    if name == "barrel":  # hollow cylinder open at both ends, 150 Å long
        return (np.abs(r_xy - 55) <= 18) & (np.abs(z) <= 75)
    if name == "dumbbell":  # two unequal spheres joined by a rod
        return (
            ((x - 70) ** 2 + y**2 + z**2 <= 45**2)
            | ((x + 75) ** 2 + y**2 + z**2 <= 35**2)
            | ((np.abs(x) <= 75) & (y**2 + z**2 <= 14**2))
        )
    if name in ("helix_right", "helix_left"):  # 3 turns, pitch 60 Å, radius 50 Å, tube 16 Å
        hand, pitch, radius = (1.0 if name == "helix_right" else -1.0), 60.0, 50.0
        theta = np.arctan2(y, x)
        turns = np.round((hand * z / pitch) - theta / (2 * np.pi))  # nearest turn of the helix at this angle
        dz = z - hand * pitch * (theta / (2 * np.pi) + turns)
        cos_pitch = 2 * np.pi * radius / np.hypot(2 * np.pi * radius, pitch)
        return ((r_xy - radius) ** 2 + (dz * cos_pitch) ** 2 <= 16**2) & (np.abs(z) <= 1.5 * pitch)
    if name in ("corner_right", "corner_left"):  # three orthogonal arms of lengths 130, 90, 55 Å: chiral
        s = 1.0 if name == "corner_right" else -1.0
        o = np.array([-40.0, -30.0, -20.0]) * np.array([1, 1, s])
        arms = [np.array([130.0, 0, 0]), np.array([0, 90.0, 0]), np.array([0, 0, s * 55.0])]
        solid = np.zeros(p.shape[:-1], bool)
        for arm in arms:
            solid |= _tube(np.stack([o, o + arm]), 17, p)
        return solid
    if name == "globule":  # triaxial ellipsoid
        return (x / 85) ** 2 + (y / 60) ** 2 + (z / 40) ** 2 <= 1
    if name == "tetrahedron":  # four spheres at the vertices of a tetrahedron, joined at the centre
        verts = 70 * np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3)
        solid = np.zeros(p.shape[:-1], bool)
        for v in verts:
            solid |= np.linalg.norm(p - v, axis=-1) <= 30
        return solid
    raise KeyError(name)


BUILTIN_SHAPES = (
    "ring",
    "barrel",
    "dumbbell",
    "helix_right",
    "helix_left",
    "corner_right",
    "corner_left",
    "globule",
    "tetrahedron",
)


def builtin_structure(name: str, voxel_size: float = 10.0) -> Structure:
    """A procedural shape (see ``BUILTIN_SHAPES``): distinct sizes, symmetries and handedness.

    Shapes are defined in Å, supersampled 2x per axis and smoothed (sigma 4 Å), so they keep their size at
    any voxel size. ``helix_*`` and ``corner_*`` come as mirror-image pairs.
    """
    if name not in BUILTIN_SHAPES:
        raise KeyError(f"unknown built-in structure {name!r}; choose from {', '.join(BUILTIN_SHAPES)}")
    extent = 200.0
    size = int(np.ceil(2 * extent / voxel_size)) | 1
    sub = 2
    fine = size * sub
    c = (fine - 1) / 2.0
    ax = (np.arange(fine) - c) * voxel_size / sub
    zz, yy, xx = np.meshgrid(ax, ax, ax, indexing="ij")
    solid = _builtin_solid(name, np.stack([xx, yy, zz], axis=-1)).astype(np.float32)
    solid = ndimage.gaussian_filter(solid, 4.0 / (voxel_size / sub))
    coarse = solid.reshape(size, sub, size, sub, size, sub).mean(axis=(1, 3, 5))
    return Structure(name, standardise_density(coarse), voxel_size, by_code=True)


def load_structures(specs: Sequence[str | os.PathLike], voxel_size: float = 10.0) -> list[Structure]:
    """Structures from a list of specs, in order (folders sorted); names are file stems in lower case.

    A spec is a map (.mrc) or atomic model (.pdb/.cif) path, a folder of them, ``builtin`` (all built-in
    shapes) or ``builtin:NAME``, ``procedural:N`` or ``procedural:N:FIRST_SEED`` (N pseudo-molecules, see
    ``simulate.procedural``), or ``membrane:PATH`` (membrane proteins, transmembrane axis along z, bilayer
    centre at the map's box centre). Any spec ending in ``@membrane`` gives the membrane-bound class
    ``NAME@membrane`` of each of its soluble structures instead of the free one.
    """
    out: list[Structure] = []
    for spec in specs:
        spec = str(spec)
        bound = spec.endswith(MEMBRANE_SUFFIX)
        structs = _structures_of_spec(spec[: -len(MEMBRANE_SUFFIX)] if bound else spec, voxel_size)
        out.extend(s.membrane_bound() for s in structs) if bound else out.extend(structs)
    names = [s.name for s in out]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise InputError(f"structure names must be unique; repeated: {', '.join(sorted(dup))}")
    return out


def _structures_of_spec(spec: str, voxel_size: float) -> list[Structure]:
    if spec == "builtin":
        return [builtin_structure(n, voxel_size) for n in BUILTIN_SHAPES]
    if spec.startswith("builtin:"):
        name = spec.split(":", 1)[1]
        if name not in BUILTIN_SHAPES:
            raise InputError(f"{spec}: unknown built-in structure {name!r}; choose from {', '.join(BUILTIN_SHAPES)}")
        return [builtin_structure(name, voxel_size)]
    if spec.startswith("procedural:"):
        from .procedural import procedural_structures

        count, first = _parse_procedural_spec(spec)
        return list(procedural_structures(count, first, voxel_size))
    if spec.startswith("membrane:"):
        return [_as_transmembrane(s) for s in _structures_of_path(spec.split(":", 1)[1], voxel_size)]
    return _structures_of_path(spec, voxel_size)


def _parse_procedural_spec(spec: str) -> tuple[int, int]:
    parts = spec.split(":")[1:]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or values[0] < 1 or (len(values) == 2 and values[1] < 0):
        raise InputError(f"{spec}: expected procedural:N or procedural:N:FIRST_SEED (N >= 1, seed >= 0)")
    return values[0], values[1] if len(values) == 2 else 0


def _structures_of_path(spec: str, voxel_size: float) -> list[Structure]:
    if os.path.isdir(spec):
        files = sorted(p for p in Path(spec).iterdir() if p.suffix.lower() in MAP_SUFFIXES + ATOMIC_SUFFIXES)
        if not files:
            raise InputError(f"{spec}: no structure files (.mrc/.map/.pdb/.cif) in this folder")
        return [load_structure_file(p, voxel_size) for p in files]
    return [load_structure_file(spec, voxel_size)]


def _as_transmembrane(struct: Structure) -> Structure:
    """Mark a map as a membrane protein: its bilayer centre is where its original box centre was."""
    struct.binding = "transmembrane"
    return struct


def load_structure_file(path: str | os.PathLike, voxel_size: float) -> Structure:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: structure file not found")
    suffix = path.suffix.lower()
    if suffix in MAP_SUFFIXES:
        return structure_from_map(path, voxel_size)
    if suffix in ATOMIC_SUFFIXES:
        return structure_from_atoms(path, voxel_size)
    raise InputError(f"{path}: unknown structure format {suffix!r} (expected .mrc/.map or .pdb/.cif)")
