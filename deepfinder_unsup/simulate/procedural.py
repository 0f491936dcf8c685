"""Procedural pseudo-macromolecules: random, protein-like densities made by code, one class per seed.

A structure is a cloud of pseudo-residues (110 Da each, one per 136 Å^3, the volume of protein at
1.35 g/cm^3). Its asymmetric subunit is a chain of 1-6 ellipsoidal domains (20-500 kDa in all), sometimes with
a thin appendage; the subunit is copied by a point group (C1-C8, D2-D7, T, O) or along a helical filament
segment; a channel may be bored along the symmetry axis. Total mass is drawn log-uniform in 100 kDa - 4 MDa
(helical segments of 6-25 subunits get mass / 15 per subunit, so they weigh 40-170 % of the draw: 50 kDa - 4 MDa
in all) and the diameter is kept within 5-35 nm. The cloud is rendered at any voxel size by trilinear
splatting and a Gaussian blur (sigma 0.7 voxel, the band limit of the shared maps), then scaled like every
map (see ``structures``), so mass and contrast are on the same scale as real structures.

Everything is a pure function of the seed. Seeds whose value is 4 mod 5 are the mirror image of seed - 1 (the
same molecule, other hand): mirror pairs are distinct classes. ``wobble`` draws a small rigid-body motion of
every subunit (conformational flexibility within a class).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation

from .structures import Structure, standardise_density

RESIDUE_MASS_DA = 110.0
RESIDUE_VOLUME_A3 = RESIDUE_MASS_DA / 0.81  # protein: 1.35 g/cm^3 = 0.81 Da/Å^3
MASS_RANGE_KDA = (100.0, 4000.0)
SUBUNIT_RANGE_KDA = (20.0, 500.0)
DIAMETER_RANGE_A = (50.0, 350.0)
MIRROR_PERIOD = 5  # seed % 5 == 4: mirror image of seed - 1
POINT_GROUPS = ["C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "D2", "D3", "D4", "D5", "D6", "D7", "T", "O", "helix"]


@dataclass(frozen=True)
class ProceduralMolecule:
    """The pseudo-residue cloud of one procedural class (Å, centred on its centre of mass)."""

    seed: int
    symmetry: str
    n_subunits: int
    mass_kda: float
    diameter_a: float
    mirrored: bool
    points: np.ndarray  # (N, 3) x, y, z in Å
    subunit: np.ndarray  # (N,) index of the subunit each point belongs to

    @property
    def name(self) -> str:
        return procedural_name(self.seed)

    def summary(self) -> dict:
        return {
            "name": self.name,
            "seed": self.seed,
            "symmetry": self.symmetry,
            "n_subunits": self.n_subunits,
            "mass_kda": round(self.mass_kda, 1),
            "diameter_nm": round(self.diameter_a / 10, 1),
            "mirror_of": procedural_name(self.seed - 1) if self.mirrored else None,
        }


def procedural_name(seed: int) -> str:
    return f"proc{seed:07d}"


def _ellipsoid_points(n: int, axes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``n`` points uniform in an axis-aligned ellipsoid of semi-axes ``axes`` (Å)."""
    d = rng.standard_normal((n, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return d * rng.uniform(size=(n, 1)) ** (1 / 3) * axes


def _domain_axes(mass_da: float, rng: np.random.Generator, elongation: float = 2.0) -> np.ndarray:
    """Semi-axes of an ellipsoid holding ``mass_da`` at protein density, aspect ratios up to ``elongation``."""
    volume = mass_da / RESIDUE_MASS_DA * RESIDUE_VOLUME_A3
    ratios = np.exp(rng.uniform(-np.log(elongation) / 2, np.log(elongation) / 2, size=3))
    ratios /= np.prod(ratios) ** (1 / 3)
    return ratios * (3 * volume / (4 * np.pi)) ** (1 / 3)


def _subunit(mass_kda: float, rng: np.random.Generator) -> np.ndarray:
    """A subunit: a chain of ellipsoidal domains (each touching the previous one), maybe an appendage."""
    n_domains = int(rng.integers(1, 7))
    fractions = rng.dirichlet(np.full(n_domains, 2.0))
    appendage = rng.uniform() < 0.3
    parts, centre, prev_r = [], np.zeros(3), 0.0
    for i, f in enumerate(fractions):
        mass = f * mass_kda * 1e3 * (0.9 if appendage else 1.0)
        axes = _domain_axes(mass, rng)
        n = max(1, int(round(mass / RESIDUE_MASS_DA)))
        rot = Rotation.random(random_state=rng)
        if i:
            direction = rng.standard_normal(3)
            centre = centre + direction / np.linalg.norm(direction) * 0.8 * (prev_r + axes.mean())
        parts.append(rot.apply(_ellipsoid_points(n, axes, rng)) + centre)
        prev_r = axes.mean()
    points = np.concatenate(parts)
    if appendage:  # a thin rod (coiled coil, stalk) sticking out of the subunit
        mass = 0.1 * mass_kda * 1e3
        n = max(1, int(round(mass / RESIDUE_MASS_DA)))
        radius = rng.uniform(6, 10)
        length = n * RESIDUE_VOLUME_A3 / (np.pi * radius**2)
        rod = _ellipsoid_points(n, np.array([radius, radius, length / 1.5]), rng)
        direction = rng.standard_normal(3)
        direction /= np.linalg.norm(direction)
        anchor = points[np.argmax(points @ direction)]
        rot = Rotation.align_vectors([direction], [[0, 0, 1]])[0]
        points = np.concatenate([points, rot.apply(rod) + anchor + direction * length / 1.5])
    return points - points.mean(axis=0)


def _radius(points: np.ndarray) -> float:
    return float(np.sqrt((points**2).sum(axis=1)).max()) if len(points) else 0.0


def _assemble(sub: np.ndarray, symmetry: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    """Copies of ``sub`` by the point group (or helix); returns (points, subunit index, number of copies)."""
    r_sub = np.sqrt((sub**2).sum(axis=1).mean()) * 1.25  # effective radius of the subunit's mass
    sub = Rotation.random(random_state=rng).apply(sub)
    if symmetry == "helix":
        n = int(rng.integers(6, 25))
        twist = np.deg2rad(rng.uniform(20, 180)) * rng.choice([-1, 1])
        rise = rng.uniform(0.3, 1.2) * r_sub
        radius = rng.uniform(0.6, 1.5) * r_sub
        ops = [(Rotation.from_rotvec([0, 0, i * twist]), np.array([0, 0, (i - (n - 1) / 2) * rise])) for i in range(n)]
        offset = np.array([radius, 0.0, 0.0])
        copies = [rot.apply(sub + offset) + t for rot, t in ops]
    else:
        group = Rotation.create_group(symmetry)
        n = len(group)
        if n == 1:
            copies = [sub]
        else:
            if symmetry.startswith("C"):
                direction = np.array([1.0, 0.0, rng.uniform(-0.3, 0.3)])
            elif symmetry.startswith("D"):
                direction = np.array([1.0, 0.0, rng.uniform(0.3, 1.0)])
            else:
                direction = rng.standard_normal(3)
            direction /= np.linalg.norm(direction)
            centres = group.apply(direction)
            gaps = np.linalg.norm(centres[:, None] - centres[None], axis=-1) + np.eye(n) * 9
            # place the subunits so that the nearest two just touch (0.85 x two radii: interfaces overlap)
            distance = 0.85 * 2 * r_sub / gaps.min()
            copies = [g.apply(sub + direction * distance) for g in group]
    idx = np.concatenate([np.full(len(c), i) for i, c in enumerate(copies)])
    return np.concatenate(copies), idx, n


def _bore_channel(points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Keep points outside a channel of random radius along z (the symmetry axis)."""
    radius = rng.uniform(8, 25)
    return (points[:, 0] ** 2 + points[:, 1] ** 2) > radius**2


def _draw_symmetry(mass_kda: float, rng: np.random.Generator) -> str:
    lo, hi = SUBUNIT_RANGE_KDA
    groups = []
    for g in POINT_GROUPS:
        order = {"T": 12, "O": 24, "helix": 15}.get(g) or int(g[1:]) * (2 if g[0] == "D" else 1)
        if lo <= mass_kda / order <= hi:
            groups.append(g)
    return groups[int(rng.integers(len(groups)))] if groups else "O"


@functools.lru_cache(maxsize=4096)
def procedural_molecule(seed: int) -> ProceduralMolecule:
    """The pseudo-molecule of ``seed`` (deterministic; seeds 4 mod 5 mirror seed - 1)."""
    if seed < 0:
        raise ValueError(f"procedural seeds are non-negative, got {seed}")
    if seed % MIRROR_PERIOD == MIRROR_PERIOD - 1:
        base = procedural_molecule(seed - 1)
        pts = base.points * np.array([-1.0, 1.0, 1.0])
        return ProceduralMolecule(
            seed, base.symmetry, base.n_subunits, base.mass_kda, base.diameter_a, True, pts, base.subunit
        )
    rng = np.random.default_rng([seed, 20261130])
    for _attempt in range(50):
        mass = float(np.exp(rng.uniform(*np.log(MASS_RANGE_KDA))))
        symmetry = _draw_symmetry(mass, rng)
        points, idx, n = _assemble(_subunit(mass / _order_of(symmetry, rng), rng), symmetry, rng)
        if symmetry != "C1" and symmetry != "helix" and rng.uniform() < 0.3:
            keep = _bore_channel(points, rng)
            points, idx = points[keep], idx[keep]
        points = points - points.mean(axis=0)
        diameter = 2 * _radius(points)
        if DIAMETER_RANGE_A[0] <= diameter <= DIAMETER_RANGE_A[1]:
            mass_kda = len(points) * RESIDUE_MASS_DA / 1e3
            return ProceduralMolecule(
                seed, symmetry, n, mass_kda, diameter, False, points.astype(np.float32), idx.astype(np.int32)
            )
    raise RuntimeError(f"procedural seed {seed}: no molecule within the size limits")  # pragma: no cover


def _order_of(symmetry: str, rng: np.random.Generator) -> int:
    return {"T": 12, "O": 24, "helix": 15}.get(symmetry) or int(symmetry[1:]) * (2 if symmetry[0] == "D" else 1)


def wobble_points(
    mol: ProceduralMolecule, rng: np.random.Generator, max_degrees: float = 4.0, max_shift_a: float = 3.0
) -> np.ndarray:
    """The molecule with every subunit moved by a small random rigid-body motion about its own centre."""
    out = mol.points.copy()
    for s in range(int(mol.subunit.max()) + 1):
        sel = mol.subunit == s
        centre = out[sel].mean(axis=0)
        rot = Rotation.from_rotvec(np.deg2rad(max_degrees) * rng.uniform(-1, 1, size=3) / np.sqrt(3))
        out[sel] = rot.apply(out[sel] - centre) + centre + rng.uniform(-1, 1, size=3) * max_shift_a / np.sqrt(3)
    return out


def render_points(points: np.ndarray, voxel_size: float, blur_voxels: float = 0.7) -> np.ndarray:
    """Density ``[z, y, x]`` of a point cloud (Å, x y z): trilinear splatting on a cubic grid, Gaussian blur."""
    radius = _radius(points) / voxel_size
    n = int(np.ceil(2 * radius)) + 7
    c = (n - 1) / 2.0
    g = points[:, ::-1] / voxel_size + c  # (z, y, x) grid coordinates
    i0 = np.floor(g).astype(np.int64)
    f = g - i0
    grid = np.zeros(n**3, np.float64)
    for dz in (0, 1):
        for dy in (0, 1):
            for dx in (0, 1):
                w = (
                    (f[:, 0] if dz else 1 - f[:, 0])
                    * (f[:, 1] if dy else 1 - f[:, 1])
                    * (f[:, 2] if dx else 1 - f[:, 2])
                )
                flat = ((i0[:, 0] + dz) * n + i0[:, 1] + dy) * n + i0[:, 2] + dx
                grid += np.bincount(flat, weights=w, minlength=n**3)
    vol = grid.reshape(n, n, n).astype(np.float32)
    return ndimage.gaussian_filter(vol, blur_voxels)


class ProceduralStructure(Structure):
    """A :class:`Structure` rendered from a procedural molecule, directly at any voxel size.

    ``mirrored``: the molecule's mirror image (x negated), named ``NAME-mirror``: a structure drawn once beside its
    own mirror image (``train --fresh-mirrors``) is a negative that differs in handedness only.
    """

    def __init__(self, seed: int, voxel_size: float = 10.0, mirrored: bool = False):
        self.seed, self.mirrored = int(seed), bool(mirrored)
        mol = self.molecule
        name = mol.name + ("-mirror" if self.mirrored else "")
        super().__init__(name, standardise_density(render_points(mol.points, voxel_size)), voxel_size, by_code=True)

    @property
    def molecule(self) -> ProceduralMolecule:
        mol = procedural_molecule(self.seed)
        if not self.mirrored:
            return mol
        return replace(mol, points=mol.points * np.array([-1.0, 1.0, 1.0], np.float32))  # as seeds 4 mod 5 are

    def at_voxel_size(
        self, voxel_size: float, rng: np.random.Generator | None = None, wobble: bool = False
    ) -> Structure:
        pts = wobble_points(self.molecule, rng) if wobble and rng is not None else self.molecule.points
        return Structure(
            self.name,
            standardise_density(render_points(pts, voxel_size)),
            voxel_size,
            binding=self.binding,
            membrane_z=self.membrane_z,
            by_code=True,
        )


def procedural_structures(count: int, first_seed: int = 0, voxel_size: float = 10.0) -> list[ProceduralStructure]:
    """``count`` procedural classes from seeds ``first_seed`` ... ``first_seed + count - 1``."""
    if count < 1:
        raise ValueError(f"the number of procedural structures must be at least 1, got {count}")
    return [ProceduralStructure(s, voxel_size) for s in range(first_seed, first_seed + count)]
