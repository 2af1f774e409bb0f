"""Does Triplet Attention help on my data, and where? A seeded, paired, resumable study of placements.

The plain model and each placement (a named one, ``STEM-PLACEMENT.yaml``: ``yolo11n.yaml`` ->
``yolo11n-triplet-neck.yaml``; explicit positions, ``after:4,6``: ``yolo11n+TA@4,6.yaml``; or ``each-backbone``) are
trained through the normal ultralytics trainer with the same seeds, data, budget and hyper-parameters, locally or as
Ray tasks. Each variant's result is the paired difference to the plain model at the same seed, with a 95% t-interval,
and a plain-words verdict.

One job per file: ``stats`` (t quantiles, paired intervals), ``variants`` (what each placement builds, and its
name), ``plan`` (variants and checked settings), ``fingerprint`` (what makes two studies the same), ``store``
(``study.json`` and the records), ``run`` (one training run), ``console`` (the progress bar, each run's log file),
``backends`` (local, Ray), ``report`` (summaries, table, CSV) and ``plot`` (the chart).

Output directory (``out``):
    study.json         the study's settings and their fingerprint (a changed setting is a different study)
    models/            the configs of ``after:`` placements (``yolo11n+TA@4,6.yaml``)
    records/RUN.json   one file per finished run, written atomically (what makes the study resumable)
    runs/RUN/          the ultralytics training runs (RUN is ``<config stem>-seed<k>``), each with its train.log
    study.txt          the table; study.csv one row per run; study.png each variant's paired difference to the
                       plain model (mean, 95% interval, each seed) and each seed's value

Examples:
    >>> from ultralytics_triplet import run_study
    >>> result = run_study("data.yaml", model="yolov5n.yaml", placements=["triplet", "triplet-neck"], seeds=3)
    >>> print(result.table)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import _compat
from .._checks import check_int
from .._text import PREFIX
from ..placements import NAMES
from .console import Console
from .plan import Plan, make_plan
from .report import Summary, add_costs, format_table, run_rows, summarize, write_csv
from .run import RunRecord, RunSpec, expected_data_order
from .store import Store, write_text
from .variants import write_configs

__all__ = ("StudyResult", "run_study")


@dataclass
class StudyResult:
    """What :func:`run_study` did and found.

    Attributes:
        out (Path): The study directory.
        rows (list[Summary]): One per variant (plain first), as in ``study.txt``.
        runs (list[dict]): One per (variant, seed) run: the columns of ``study.csv``.
        table (str): The printed table (also ``study.txt``).
        trained (int): Runs trained from scratch by this call.
        resumed (int): Interrupted runs this call continued.
        reused (int): Finished runs this call found recorded and did not train again.
        files (dict[str, Path]): ``txt``, ``csv`` and ``png`` outputs.
    """

    out: Path
    rows: list[Summary]
    runs: list[dict]
    table: str
    trained: int = 0
    resumed: int = 0
    reused: int = 0
    files: dict[str, Path] = field(default_factory=dict)


def run_study(
    data: str | Path,
    model: str | Path = "yolo11n.yaml",
    placements: Sequence[str] = NAMES,
    seeds: int = 3,
    epochs: int = 50,
    imgsz: int = 640,
    batch: int = 16,
    pretrained: str | Path | None = None,
    device: str | int | None = None,
    out: str | Path = "study",
    backend: str = "local",
    address: str | None = None,
    latency_runs: int = 20,
    verbose: bool = False,
    **train_args: Any,
) -> StudyResult:
    """Train the plain model and each Triplet Attention placement over seeds; report paired differences.

    Every variant trains through ``YOLO(cfg).train(...)`` with the same data, seeds ``0..seeds-1``, budget and
    hyper-parameters (``deterministic=True``); with ``pretrained`` every variant starts from the same weights
    (layer-aligned, inserted attention as a pass-through). Runs are ordered seed by seed, so an interrupted study
    already holds complete pairs. A finished run is recorded in ``out/records``; calling again with the same
    settings reuses those, continues an interrupted run and trains only what is missing. More seeds or placements
    extend a study; other data, model, budget or hyper-parameters are a different study (refused in the same
    ``out``).

    Args:
        data (str | Path): Dataset YAML (a local file).
        model (str | Path): Plain model YAML, e.g. ``yolo11n.yaml``; named placement ``p`` is ``STEM-p.yaml`` beside
            it.
        placements (Sequence[str]): Any of the named placements ``triplet``, ``triplet-neck``, ``triplet-dense``;
            ``after:I[,J...]``, TripletAttention after layers I, J, ... of ``model`` (backbone and head counted
            together, as ``insert_layers`` counts), written as ``out/models/STEM+TA@I,J.yaml``; ``each-backbone``,
            one ``after:I`` per backbone layer.
        seeds (int): Number of seeds (>= 2): every variant trains once per seed.
        epochs (int): Epochs per run.
        imgsz (int): Training image size.
        batch (int): Batch size (-1: ultralytics' auto batch).
        pretrained (str | Path | None): Base weights (``.pt``) every variant starts from, or None for scratch.
        device (str | int | None): ultralytics' ``device`` (``0``, ``0,1`` for DDP, ``cpu``); None lets it choose.
        out (str | Path): Study directory (new, empty, or holding this same study).
        backend (str): ``local`` (one run after another here) or ``ray`` (each run a Ray task).
        address (str | None): Ray cluster address (``ray`` backend); None starts or joins a local instance.
        latency_runs (int): Timed forward passes per variant for the latency column.
        verbose (bool): Stream every run's full ultralytics log; by default one progress bar shows the runs, each
            run's log goes to ``runs/RUN/train.log`` and only warnings and errors reach the console.
        **train_args (Any): Further ultralytics train arguments for every run (e.g. ``workers=0``, ``lr0=0.01``).

    Returns:
        (StudyResult): The per-variant rows, the per-run records, the table and the written files.

    Raises:
        FileNotFoundError: If the data, the model, a placement's config or the pretrained weights do not exist.
        FileExistsError: If ``out`` holds a different study, or other files.
        ValueError: On a bad argument (unknown placement, a position out of range, fewer than 2 seeds, ...). Nothing
            is trained or written.
        ImportError: For ``backend='ray'`` without Ray installed.
        NotRegisteredError: If ultralytics is not patched (``ULTRALYTICS_TRIPLET_DISABLE=1`` before ``register()``).
        RuntimeError: If a run failed on Ray (the finished runs are recorded).
    """
    from ultralytics.utils import LOGGER

    check_int("latency_runs", latency_runs, 1)
    store = Store(out)
    plan = make_plan(data, model, placements, seeds, epochs, imgsz, batch, pretrained, backend, store.out, train_args)
    store.open(plan)
    write_configs(plan.variants)
    specs, variant_of = [], {}
    for seed in range(seeds):  # seed by seed: an interrupted study holds complete pairs
        for v in plan.variants:
            spec = RunSpec(cfg=v.config, data=plan.settings["data"], seed=seed, epochs=epochs, imgsz=imgsz,
                           batch=batch, device=device, project=str(store.runs), name=v.run_name(seed),
                           pretrained=plan.settings["pretrained"], train_args=dict(train_args), verbose=verbose)
            specs.append(spec)
            variant_of[spec.name] = v
    records: dict[str, RunRecord] = {}
    todo = []
    for spec in specs:
        record = store.read(spec.name)
        if record is None:
            todo.append(spec)
            continue
        if record.config_sha256 != variant_of[spec.name].sha256:
            raise FileExistsError(
                f"'{spec.cfg}' is not the config run {spec.name} was trained with (its YAML changed since); "
                "results of different settings are never mixed: choose a new out directory"
            )
        records[spec.name] = record
    total, counts = len(specs), {"trained": 0, "resumed": 0, "revalidated": 0}
    LOGGER.info(
        f"{PREFIX} study in {store.out}: {len(plan.variants)} variants x {seeds} seeds = {total} runs; "
        f"{len(records)} already done, {len(todo)} to train ({backend} backend)"
        + ("" if verbose or not todo else f"; each run's log goes to {store.runs.name}/RUN/train.log")
    )
    if todo and expected_data_order(device) == "fixed":
        LOGGER.warning(f"{PREFIX} ultralytics {_compat.ultralytics_version()} shuffles a multi-GPU (DDP) run's data "
                       "the same way at every seed: the seeds will differ in initialisation and augmentation only")

    console = Console(todo, total, verbose)

    def on_done(spec: RunSpec, record: RunRecord) -> None:
        """Record one finished run atomically and show the progress."""
        variant = variant_of[spec.name]
        record.config_sha256, record.placement = variant.sha256, variant.placement
        record.run_dir = os.path.relpath(record.run_dir, store.out.resolve())
        record.weights = os.path.relpath(record.weights, store.out.resolve())
        store.write(record)
        records[spec.name] = record
        counts[record.status] = counts.get(record.status, 0) + 1
        console.done(spec.name, record.status, spec.epochs)

    try:
        if todo and backend == "ray":
            from .backends import run_ray

            run_ray(todo, on_done, address, device)
        elif todo:
            from .backends import run_local

            run_local(todo, on_done, console)
    except KeyboardInterrupt:
        console.close()
        LOGGER.warning(f"{PREFIX} study interrupted with {len(records)}/{total} runs recorded; the same call again "
                       "continues the interrupted run and trains what is missing")
        raise
    finally:
        console.close()

    runs = run_rows(plan, [records[s.name] for s in specs])
    rows = summarize(plan, runs)
    add_costs(rows, store.out, imgsz, latency_runs, device)
    text = format_table(rows, plan, device=device, runs=runs)
    files = _write_outputs(store.out, text, runs, rows, plan)
    versions = sorted({r.get("ultralytics", "?") for r in runs})
    if len(versions) > 1:
        LOGGER.warning(f"{PREFIX} these runs were trained with different ultralytics releases: {', '.join(versions)}")
    return StudyResult(out=store.out, rows=rows, runs=runs, table=text, trained=counts["trained"],
                       resumed=counts["resumed"] + counts["revalidated"], reused=total - sum(counts.values()),
                       files=files)


def _write_outputs(out: Path, text: str, runs: list[dict], rows: list[Summary], plan: Plan) -> dict[str, Path]:
    """Write ``study.txt``, ``study.csv`` and ``study.png`` atomically; return their paths."""
    from .._files import atomic_write
    from .plot import plot_study

    files = {"txt": out / "study.txt", "csv": out / "study.csv", "png": out / "study.png"}
    write_text(files["txt"], text + "\n")
    write_csv(files["csv"], runs)
    atomic_write(files["png"], lambda tmp: plot_study(rows, tmp, plan))
    return files
