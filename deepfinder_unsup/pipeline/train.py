"""``train``: f_theta from a data set file or from structures simulated on the fly."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..io.dataset import read_dataset
from ..io.files import InputError

RUN_FILES = ("model.keras", "last.keras", "best.keras", "state.json", "history.csv")  # what a run leaves in its folder


def train_to_folder(
    out_dir,
    config,
    val_path,
    train_path=None,
    structures: Sequence[str] | None = None,
    sim_config_path=None,
    resume: bool = False,
    command: str | None = None,
    overwrite: bool = False,
) -> Path:
    """``deepfinder-unsup train``: from a data set file, or from structures simulated on the fly. A folder holding
    an earlier run (finished or interrupted) is refused unless ``resume`` (continue it) or ``overwrite``."""
    from ..train import train

    _refuse_an_earlier_run(Path(out_dir), resume, overwrite)
    val = read_dataset(val_path)
    if structures is None:
        for flag, on in (("batch", config.one_acquisition_per_batch), ("view", config.one_acquisition_per_view)):
            if on:
                raise InputError(
                    f"--one-acquisition-per-{flag} draws the simulation's microscope: it needs --structures"
                )
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
        negative_weight=config.negative_weight,
    )
    return train(None, val, out_dir, config, resume, command, simulation=source)


def _refuse_an_earlier_run(out_dir: Path, resume: bool, overwrite: bool) -> None:
    """A new run in a folder with an earlier run's files would replace them (its checkpoints, history, kept epochs):
    an interrupted run's hours of training lost without a word. Refused, naming the file, before any work."""
    if resume or overwrite or not out_dir.is_dir():
        return
    found = [out_dir / name for name in RUN_FILES if (out_dir / name).exists()] + sorted(out_dir.glob("epoch_*.keras"))
    if found:
        raise FileExistsError(
            f"{found[0]}: an earlier training run's file; pass --resume to continue that run or --overwrite to "
            "start a new one in its place"
        )
