"""Workflows that chain the modules, one module per CLI job (the CLI only parses and prints).

``simulate`` (a data set folder, a crowded tomogram), ``train``, ``embed`` (picks -> embeddings file), ``cluster``
(embeddings -> clusters + report), ``average``, ``adapt``, the ``demo``; ``inputs``: the checks they share. Outputs
are checked for overwriting before any long computation starts.
"""

from .adapt import adapt_to_file
from .average import average_to_folder
from .cluster import cluster_to_folder
from .demo import DEMO_SHAPES, run_demo
from .embed import embed_picks_to_file, embed_to_file
from .inputs import read_star_picks
from .simulate import simulate_to_folder, simulate_tomogram_to_folder
from .train import train_to_folder

__all__ = [
    "DEMO_SHAPES",
    "adapt_to_file",
    "average_to_folder",
    "cluster_to_folder",
    "embed_picks_to_file",
    "embed_to_file",
    "read_star_picks",
    "run_demo",
    "simulate_to_folder",
    "simulate_tomogram_to_folder",
    "train_to_folder",
]
