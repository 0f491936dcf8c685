"""File formats: MRC volumes, DeepFinder XML object lists, RELION STAR, SHREC ground truth, HDF5 files."""

from .dataset import (
    SubtomoDataset,
    provenance,
    read_dataset,
    read_embedding_slices,
    read_embeddings,
    write_dataset,
    write_embeddings,
)
from .files import InputError, atomic_path, check_writable, require_file
from .mrc import read_mrc, read_mrc_voxel_size, write_mrc
from .objl import OBJL_KEYS, new_object, objl_get_class, objl_get_tomo, read_objl, write_objl
from .shrec import SHREC21_CLASSES, read_shrec_locations, read_shrec_model, write_shrec_locations
from .star import read_star, write_star

read_xml = read_objl  # DeepFinder's name (deepfinder.utils.objl.read_xml)
write_xml = write_objl  # DeepFinder's name (deepfinder.utils.objl.write_xml)

__all__ = [
    "SubtomoDataset",
    "provenance",
    "read_dataset",
    "read_embedding_slices",
    "read_embeddings",
    "write_dataset",
    "write_embeddings",
    "InputError",
    "atomic_path",
    "check_writable",
    "require_file",
    "read_mrc",
    "read_mrc_voxel_size",
    "write_mrc",
    "OBJL_KEYS",
    "new_object",
    "objl_get_class",
    "objl_get_tomo",
    "read_objl",
    "write_objl",
    "read_xml",
    "write_xml",
    "SHREC21_CLASSES",
    "read_shrec_locations",
    "read_shrec_model",
    "write_shrec_locations",
    "read_star",
    "write_star",
]
