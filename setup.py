"""deepfinder-unsup: unsupervised classification of cryo-ET sub-tomograms with DeepFinder's encoder."""
from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
version = {}
exec((here / "deepfinder_unsup" / "_version.py").read_text(), version)

setup(
    name="deepfinder-unsup",
    version=version["__version__"],
    description="Unsupervised classification of macromolecules in cryo-electron tomograms "
                "(Moebel & Kervrann 2022), built on DeepFinder",
    long_description=(here / "README.md").read_text(),
    long_description_content_type="text/markdown",
    license="GPL-3.0-or-later",
    python_requires=">=3.10",
    packages=find_packages(include=["deepfinder_unsup", "deepfinder_unsup.*"]),
    package_data={"deepfinder_unsup": ["pretrained/*.keras", "pretrained/*.json"]},
    include_package_data=True,
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3",
        "numpy",
        "scipy",
        "scikit-learn>=1.3",  # sklearn.cluster.HDBSCAN
        "mrcfile",
        "lxml",
        "h5py",
        "matplotlib",
        "tqdm",
        "starfile",
        "threadpoolctl>=3",  # OpenMP / BLAS threads limited to the idle cores (deepfinder_unsup/threads.py)
    ],
    extras_require={
        "test": ["pytest", "gemmi", "hypothesis", "ruff", "mypy", "pytest-cov", "dask[distributed]", "openvino", "nncf", "copick"],
        "dask": ["dask[distributed]"],
        "fast": ["openvino", "nncf"],
        "copick": ["copick"],
        "umap": ["umap-learn"],
        "structures": ["gemmi"],
    },
    entry_points={"console_scripts": ["deepfinder-unsup=deepfinder_unsup.cli:main"]},
    classifiers=[
        "License :: OSI Approved :: GNU General Public License v3 or later (GPLv3+)",
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Bio-Informatics",
    ],
)
