"""``demo``: the whole pipeline on a simulated tomogram of built-in shapes, scored against the truth."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..io.files import atomic_path
from ..log import logger
from .cluster import cluster_to_folder
from .embed import embed_to_file
from .simulate import simulate_tomogram_to_folder

DEMO_SHAPES = ("ring", "barrel", "dumbbell", "helix_right", "corner_right", "globule")


def run_demo(
    out_dir="deepfinder_unsup_demo",
    model=None,
    seed: int = 0,
    overwrite: bool = False,
    n_particles: int = 240,
    shape=(80, 320, 320),
) -> dict:
    """Simulate a tomogram of built-in shapes, embed its particles with the (shipped) model, cluster with
    k = 2..10, score against the truth and write the report; logs what it does and the V-measure."""
    from ..simulate.config import fixed_config

    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{out_dir}: folder exists and is not empty; pass --overwrite or --out ELSEWHERE")
    t0 = time.time()
    tomo_dir = out_dir / "tomogram"
    logger.info(
        f"[1/3] simulating a {shape[2]}x{shape[1]}x{shape[0]} tomogram crowded with up to {n_particles} particles of "
        f"{len(DEMO_SHAPES)} built-in shapes ..."
    )
    config_path = out_dir / "sim_config.json"
    config = fixed_config(snr=0.3, bfactor=200.0)  # one plain microscope: +-60 degrees, 3 µm, no CTF correction
    with atomic_path(config_path, overwrite=True) as tmp:
        tmp.write_text(json.dumps(config.to_dict(), indent=1))
    simulate_tomogram_to_folder(
        [f"builtin:{s}" for s in DEMO_SHAPES],
        tomo_dir,
        shape,
        n_particles,
        1,
        config_path,
        seed,
        overwrite=True,
        fill=True,
    )
    logger.info(f"[2/3] embedding the picks of {tomo_dir / 'objects.xml'} ...")
    emb_path, n = embed_to_file(
        out_dir / "embeddings.h5",
        objl_path=tomo_dir / "objects.xml",
        tomograms=[str(tomo_dir / "tomogram.mrc")],
        model=model,
        border="pad",
        overwrite=True,
        command="deepfinder-unsup demo",
    )
    logger.info(f"[3/3] clustering {n} embeddings for k = 2..10 and writing the report ...")
    doc, html = cluster_to_folder(emb_path, "2:10", out_dir / "clusters", evaluate=True, overwrite=True, seed=seed)
    at_truth = next(r for r in doc["per_k"] if r["k"] == len(DEMO_SHAPES))
    selected = next(r for r in doc["per_k"] if r["k"] == doc["selected_k"])
    logger.info(f"V-measure at k = {len(DEMO_SHAPES)} (the true number of classes): {at_truth['v_measure']:.3f}")
    logger.info(f"selected k = {doc['selected_k']} (largest eigengap), V-measure there: {selected['v_measure']:.3f}")
    logger.info(f"report: {html}")
    logger.info(f"cluster object lists: {out_dir / 'clusters'}/clusters_k*.xml (DeepFinder) and .star (RELION)")
    logger.info(f"done in {time.time() - t0:.0f} s")
    return doc
