"""Rotations: uniform sampling on SO(3), Euler conventions, and rotating ``[z, y, x]`` volumes.

Convention (DeepFinder / TOM / Dynamo): angles ``(phi, the, psi)`` in degrees, ZXZ, active: a particle is the
reference rotated by ``R = Rz(psi) @ Rx(the) @ Rz(phi)`` acting on (x, y, z) column vectors; in scipy terms
``Rotation.from_euler('zxz', [phi, the, psi])`` (lower case = extrinsic). RELION's ``(rot, tilt, psi)`` are ZYZ
intrinsic and passive (they rotate the particle onto the reference), so RELION's matrix is ``R``'s inverse.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation

from .volume import box_centre


def random_rotations(n: int, rng: np.random.Generator) -> Rotation:
    """``n`` rotations drawn uniformly on SO(3) (Haar measure)."""
    return Rotation.random(n, random_state=rng)


def rotation_from_deepfinder_angles(phi, the, psi) -> Rotation:
    """The active rotation of DeepFinder/TOM ZXZ angles (degrees)."""
    return Rotation.from_euler("zxz", np.stack([phi, the, psi], axis=-1), degrees=True)


def deepfinder_angles(rotation: Rotation) -> np.ndarray:
    """(phi, the, psi) in degrees of an active rotation (shape (3,) or (N, 3))."""
    return rotation.as_euler("zxz", degrees=True)


def relion_to_deepfinder_angles(rot_tilt_psi: np.ndarray) -> np.ndarray:
    """RELION (rot, tilt, psi) rows -> DeepFinder (phi, the, psi) rows, all degrees."""
    passive = Rotation.from_euler("ZYZ", np.asarray(rot_tilt_psi, float), degrees=True)
    return deepfinder_angles(passive.inv())


def deepfinder_to_relion_angles(phi_the_psi: np.ndarray) -> np.ndarray:
    """DeepFinder (phi, the, psi) rows -> RELION (rot, tilt, psi) rows, all degrees."""
    arr = np.asarray(phi_the_psi, float)
    active = rotation_from_deepfinder_angles(arr[..., 0], arr[..., 1], arr[..., 2])
    return active.inv().as_euler("ZYZ", degrees=True)


def rotate_volume(
    volume: np.ndarray,
    rotation: Rotation,
    out_shape: tuple[int, int, int] | None = None,
    shift_xyz=(0.0, 0.0, 0.0),
    order: int = 1,
) -> np.ndarray:
    """Rotate a ``[z, y, x]`` volume about its centre by an active rotation, then shift it (voxels, x y z).

    The output (``out_shape``, default the input's) is centred on the rotated input's centre plus the shift;
    centres are ``n // 2`` (``volume.box_centre``).
    """
    volume = np.asarray(volume, dtype=np.float32)
    out_shape = tuple(out_shape or volume.shape)
    m_xyz = rotation.as_matrix()
    perm = [2, 1, 0]  # (x, y, z) <-> (z, y, x)
    m_zyx = m_xyz[np.ix_(perm, perm)]
    inv = m_zyx.T  # output coord o = M i  ->  input i = M^T o
    c_in = np.array([box_centre(n) for n in volume.shape], float)
    c_out = np.array([box_centre(n) for n in out_shape], float) + np.asarray(shift_xyz, float)[perm]
    offset = c_in - inv @ c_out
    return ndimage.affine_transform(
        volume, inv, offset=offset, output_shape=out_shape, order=order, mode="constant", cval=0.0, prefilter=False
    )
