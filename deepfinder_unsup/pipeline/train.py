"""``train``: f_theta from a data set file or from structures simulated on the fly."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..io.dataset import read_dataset


def train_to_folder(
    out_dir,
    config,
    val_path,
    train_path=None,
    structures: Sequence[str] | None = None,
    sim_config_path=None,
    resume: bool = False,
    command: str | None = None,
) -> Path:
    """``deepfinder-unsup train``: from a data set file, or from structures simulated on the fly."""
    from ..train import train

    val = read_dataset(val_path)
    if structures is None:
        return train(read_dataset(train_path), val, out_dir, config, resume, command)
    from ..simulate.config import SimConfig
    from ..simulate.keras_source import SimulatedBatches
    from ..simulate.structures import load_structures

    sim = SimConfig.from_file(sim_config_path) if sim_config_path else SimConfig()
    structs = load_structures(structures, sim.voxel_size)
    source = SimulatedBatches(
        structs,
        sim,
        batch_size=config.batch_size,
        steps_per_epoch=config.steps_per_epoch or 100,
        seed=config.seed,
        workers=config.workers,
        use_multiprocessing=config.workers > 0,
        specs=list(structures),
        map_weight=config.map_weight,
    )
    return train(None, val, out_dir, config, resume, command, simulation=source)
