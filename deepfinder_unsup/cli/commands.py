"""What each subcommand does: thin wrappers that take the parsed options, call the package's typed operations
(``pipeline``) and print where the results are."""

from __future__ import annotations

import time
from pathlib import Path


def _tf(args) -> None:
    from .._quiet import import_tensorflow_quietly

    import_tensorflow_quietly(args.verbose)


def cmd_simulate(args) -> int:
    from .. import pipeline

    out = pipeline.simulate_to_folder(
        args.structures,
        args.per_class,
        args.out,
        config_path=args.config,
        seed=args.seed,
        workers=args.workers,
        write_mrc_files=args.mrc,
        negative=not args.no_negative,
        overwrite=args.overwrite,
        scheduler=args.scheduler,
        like=args.like,
    )
    print(f"wrote {out}")
    return 0


def cmd_simulate_tomogram(args) -> int:
    from .. import pipeline

    paths = pipeline.simulate_tomogram_to_folder(
        args.structures,
        args.out,
        tuple(args.shape),
        args.particles,
        args.membranes,
        args.config,
        args.seed,
        args.overwrite,
    )
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def cmd_train(args) -> int:
    _tf(args)
    from .. import pipeline
    from ..train import TrainConfig

    cfg = TrainConfig(
        head=args.head,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        lr_schedule=args.lr_schedule,
        warmup_steps=args.warmup_steps,
        loss=args.loss,
        margin=args.margin,
        scale=args.scale,
        focal_gamma=args.focal_gamma,
        precision=args.precision,
        deepfinder_weights=args.deepfinder_weights,
        init_model=args.init_model,
        freeze_encoder=args.freeze_encoder,
        freeze_convs=args.freeze_convs,
        patience=args.patience,
        seed=args.seed,
        max_minutes=args.max_minutes,
        stall_minutes=args.stall_minutes,
        monitor_data=args.monitor,
        select_by=args.select_by,
        workers=args.workers,
        binding_weight=args.binding_weight,
        shape_weight=args.shape_weight,
        flatten_drop=args.flatten_drop,
        map_weight=args.map_weight,
        negative_weight=args.negative_weight,
        view_weight=args.view_weight,
        contrast_weight=args.contrast_weight,
        temperature=args.temperature,
        keep_epochs=args.keep_epochs,
        reuse=args.reuse,
        fresh_share=args.fresh_structures,
        fresh_mass_band=args.fresh_mass_band,
        fresh_mirrors=args.fresh_mirrors,
        fresh_bound=args.fresh_bound,
        contrast_memory=args.contrast_memory,
        one_acquisition_per_batch=args.one_acquisition_per_batch,
        one_acquisition_per_view=args.one_acquisition_per_view,
    )
    path = pipeline.train_to_folder(
        args.out,
        cfg,
        val_path=args.val,
        train_path=args.train,
        structures=args.structures,
        sim_config_path=args.sim_config,
        resume=args.resume,
        command=args.command_line,
        overwrite=args.overwrite,
    )
    print(f"wrote {path}")
    return 0


def _copick_source(args) -> dict | None:
    if not args.copick:
        return None
    if not args.object:
        from ..io.files import InputError

        raise InputError("--copick needs --object NAME (the pickable object whose picks to embed)")
    return {
        "config": args.copick,
        "object": args.object,
        "user": args.user,
        "session": args.session,
        "runs": args.runs,
        "tomo_type": args.tomo_type,
    }


def cmd_embed(args) -> int:
    if args.verbose:
        _tf(args)
    from .. import pipeline

    t0 = time.time()
    path, n = pipeline.embed_to_file(
        args.out,
        objl_path=args.objl,
        star_path=args.star,
        tomograms=args.tomograms,
        subtomograms=args.subtomograms,
        dataset=args.dataset,
        model=args.model,
        voxel_size=args.voxel_size,
        tomogram_size=args.tomogram_size,
        border=args.border,
        batch_size=args.batch_size,
        precision=args.precision,
        overwrite=args.overwrite,
        command=args.command_line,
        resume=args.resume,
        scheduler=args.scheduler,
        workers=args.workers,
        tomograms_star=args.tomograms_star,
        copick=_copick_source(args),
        tta=args.tta,
    )
    print(f"embedded {n} sub-tomograms in {time.time() - t0:.1f} s -> {path}")
    return 0


def cmd_average(args) -> int:
    from .. import pipeline

    summary = pipeline.average_to_folder(
        args.clusters,
        args.out,
        dataset=args.dataset,
        clusters=args.only,
        box_size=args.box,
        voxel_size=args.voxel_size,
        tilt_range=tuple(args.tilt_range),
        max_particles=args.max_particles,
        rotations=args.rotations,
        iterations=args.iterations,
        seed=args.seed,
        overwrite=args.overwrite,
    )
    for c, row in summary["clusters"].items():
        print(f"cluster {c}: {row['particles']} particles, {row['resolution_A']} Å (FSC 0.143), {row['seconds']} s")
    print(f"wrote {Path(args.out) / 'averages.json'}")
    return 0


def cmd_adapt(args) -> int:
    from .. import pipeline

    _tf(args)
    report = pipeline.adapt_to_file(
        args.out,
        model=args.model,
        objl_path=args.objl,
        star_path=args.star,
        tomograms=args.tomograms,
        subtomograms=args.subtomograms,
        dataset=args.dataset,
        copick=_copick_source(args),
        voxel_size=args.voxel_size,
        method=args.method,
        rounds=args.rounds,
        steps=args.steps,
        batch_size=args.batch_size,
        k=args.k,
        max_picks=args.max_picks,
        seed=args.seed,
        overwrite=args.overwrite,
        structures=args.structures,
        precision=args.precision,
        tta=args.tta,
        neighbours=args.neighbours,
        noise=args.noise,
        one_way_weight=args.one_way_weight,
    )
    print(
        f"{report.method} on {report.n_picks} picks (k = {report.k}): silhouette {report.score_before:.3f} -> "
        f"{report.score_after:.3f}; wrote the {report.kept} model to {args.out} ({report.seconds:.0f} s)"
        + ("; embed uses the same four views by itself (the card says so)" if report.tta else "")
    )
    return 0


def cmd_cluster(args) -> int:
    from .. import pipeline

    doc, report = pipeline.cluster_to_folder(
        args.embeddings,
        args.k,
        args.out,
        args.method,
        args.evaluate,
        not args.no_report,
        args.report_k,
        args.seed,
        args.overwrite,
        normalise=args.normalise,
        average=args.average,
        dataset=args.dataset,
        average_rotations=args.rotations,
        average_iterations=args.iterations,
        copick=args.copick,
        rare=args.rare,
        min_cluster_size=args.min_cluster_size,
        rare_method=args.rare_method,
    )
    line = f"selected k = {doc['selected_k']} (largest eigengap)"
    if args.evaluate:
        best = max(doc["per_k"], key=lambda r: r["v_measure"])
        line += f"; best V-measure {best['v_measure']:.3f} at k = {best['k']}"
    print(line)
    if args.rare:
        rare = doc["rare"]
        print(
            f"rare structures: {rare['method']} found {rare['n_clusters']} clusters, sizes "
            f"{list(rare['sizes'].values())}, {rare['unassigned']} unassigned (clusters_rare.xml)"
        )
    own = Path(args.out) / f"clusters_k{args.report_k or doc['selected_k']}_particles.star"
    if own.exists():  # picks from the user's STAR file: the file to give back to RELION / Warp
        print(f"clusters in your STAR file's own tables and columns: {own} (and the other k)")
    print(f"wrote {Path(args.out) / 'metrics.json'}" + (f" and {report}" if report else ""))
    return 0


def cmd_demo(args) -> int:
    _tf(args)
    from .. import pipeline

    pipeline.run_demo(args.out, model=args.model, seed=args.seed, overwrite=args.overwrite)
    return 0


def cmd_info(args) -> int:
    import json

    _tf(args)  # model/card imports Keras: load TensorFlow quietly first
    from ..embed import resolve_model_path
    from ..model.card import card_summary, read_card

    path = resolve_model_path(args.model)
    card = read_card(path)
    if args.json:
        print(json.dumps(card, indent=2))
        return 0
    print(f"{path} ({path.stat().st_size / 1e6:.1f} MB)")
    for line in card_summary(card):
        print(f"  {line}")
    return 0


COMMANDS = {
    "simulate": cmd_simulate,
    "simulate-tomogram": cmd_simulate_tomogram,
    "train": cmd_train,
    "embed": cmd_embed,
    "cluster": cmd_cluster,
    "average": cmd_average,
    "adapt": cmd_adapt,
    "demo": cmd_demo,
    "info": cmd_info,
}
