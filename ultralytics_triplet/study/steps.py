"""``run_study`` and its steps: plan, open the folder, list the runs, find the recorded ones, train the rest, report.

``run_study`` gathers its arguments into one :class:`~.options.StudyOptions` and hands it to :func:`conduct`, which the
command line calls with the options it builds from its flags. The plan carries the options, checked, to every step.
Each step is a function of its own below, in the order :func:`conduct` calls them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ultralytics.utils import LOGGER

from .. import _compat
from .._files import atomic_write
from .._text import PREFIX
from ..placements import NAMES
from .backends import run_local, run_ray
from .console import Console
from .costs import measure_costs, settings
from .data_order import expected_data_order
from .decision import front, judge
from .options import DETECT, MODULE, StudyOptions
from .plan import Plan, make_plan
from .plot import plot_study
from .report import Summary, csv_rows, format_table, summarize, write_csv
from .run import RunRecord, RunSpec
from .store import Store, write_text
from .variants import Variant, write_configs

__all__ = ("StudyResult", "conduct", "run_study")


@dataclass
class StudyResult:
    """What :func:`run_study` did and found.

    Attributes:
        out (Path): The study directory.
        rows (list[Summary]): One per row (plain model, references, variants), as in ``study.txt``.
        runs (list[dict]): One per (row, seed) run: the columns of ``study.csv``.
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
    modules: Sequence[str] = (MODULE,),
    references: Sequence[str] = (),
    latency: str = "torch",
    detect: float = DETECT,
    **train_args: Any,
) -> StudyResult:
    """Train the plain model, its references and each placement of each module over seeds; report paired differences.

    Every row trains through ``YOLO(cfg).train(...)`` with the same data, seeds ``0..seeds-1``, budget and
    hyper-parameters (``deterministic=True``); with ``pretrained`` every row starts from the same weights
    (layer-aligned, inserted modules as a pass-through where they are TripletAttention). Runs are ordered seed by
    seed, so an interrupted study already holds complete pairs. A finished run is recorded in ``out/records``;
    calling again with the same settings reuses those, continues an interrupted run and trains only what is missing.
    More seeds, placements, modules or references extend a study; other data, model, budget or hyper-parameters are a
    different study (refused in the same ``out``).

    Args:
        data (str | Path): Dataset YAML (a local file).
        model (str | Path): Plain model YAML, e.g. ``yolo11n.yaml``; named placement ``p`` is ``STEM-p.yaml`` beside
            it.
        placements (Sequence[str]): Any of the named placements ``triplet``, ``triplet-neck``, ``triplet-dense``;
            ``after:I[,J...]``, the module after layers I, J, ... of ``model`` (backbone and head counted together,
            as ``insert_layers`` counts), written as ``out/models/STEM+TA@I,J.yaml``; ``each-backbone``, one
            ``after:I`` per backbone layer.
        seeds (int): Number of seeds (>= 2): every row trains once per seed.
        epochs (int): Epochs per run.
        imgsz (int): Training image size (and the latency's).
        batch (int): Batch size (-1: ultralytics' auto batch).
        pretrained (str | Path | None): Base weights (``.pt``) every row starts from, or None for scratch.
        device (str | int | None): ultralytics' ``device`` (``0``, ``0,1`` for DDP, ``cpu``); None lets it choose.
        out (str | Path): Study directory (new, empty, or holding this same study).
        backend (str): ``local`` (one run after another here) or ``ray`` (each run a Ray task).
        address (str | None): Ray cluster address (``ray`` backend); None starts or joins a local instance.
        latency_runs (int): Interleaved rounds of the latency measurement.
        verbose (bool): Stream every run's full ultralytics log; by default one progress bar shows the runs, each
            run's log goes to ``runs/RUN/train.log`` and only warnings and errors reach the console.
        modules (Sequence[str]): The modules each placement is built with: any the plugin registry holds
            (``TripletAttention``, ultralytics' ``CBAM``, a third-party plugin's). Another module than
            TripletAttention at a named placement is built by that placement's rule: ``out/models/STEM-M-neck.yaml``;
            after layers I, J: ``out/models/STEM+M@I,J.yaml``.
        references (Sequence[str]): Plain models trained alike and compared with ``model`` like the variants: a
            config name or path, or ``scale-up``, ``model`` at its next scale letter (``yolov5n.yaml`` ->
            ``yolov5s.yaml``).
        latency (str): Where the latency column is measured: ``torch`` (the fused PyTorch model), ``onnx`` (ONNX
            Runtime) or ``openvino``, on each row's model exported by ultralytics' ``model.export``.
        detect (float): A difference of the verdict's metric (mAP50-95 for detection) that a verdict of no difference
            says about how many seeds would detect, with 80% power.
        **train_args (Any): Further ultralytics train arguments for every run (e.g. ``workers=0``, ``lr0=0.01``).

    Returns:
        (StudyResult): The per-row summaries, the per-run records, the table and the written files.

    Raises:
        FileNotFoundError: If the data, the model, a reference, a placement's config or the pretrained weights do not
            exist.
        FileExistsError: If ``out`` holds a different study, or other files.
        ValueError: On a bad argument (unknown placement or module, a position out of range, ``scale-up`` without a
            larger scale, fewer than 2 seeds, ...). Nothing is trained or written.
        ImportError: For ``backend='ray'`` without Ray installed, or a ``latency`` runtime that is not installed.
        NotRegisteredError: If ultralytics is not patched (``ULTRALYTICS_TRIPLET_DISABLE=1`` before ``register()``).
        RuntimeError: If a run failed on Ray, or ultralytics could not export a row for the latency (the finished
            runs are recorded).
    """
    return conduct(StudyOptions(
        data=data, model=model, placements=placements, seeds=seeds, epochs=epochs, imgsz=imgsz, batch=batch,
        pretrained=pretrained, device=device, out=out, backend=backend, address=address, latency_runs=latency_runs,
        verbose=verbose, modules=modules, references=references, latency=latency, detect=detect, train_args=train_args,
    ))


def conduct(options: StudyOptions) -> StudyResult:
    """Run the study ``options`` describe: what :func:`run_study` does with its arguments (see there for what it
    does, returns and raises)."""
    plan = make_plan(options)
    store = Store(options.out)
    store.open(plan)
    write_configs(plan.variants)
    specs, variant_of = list_runs(plan, store)
    records, todo = find_recorded(store, specs, variant_of)
    announce(plan, store, len(records), todo)
    counts = train(plan, store, todo, records, variant_of)
    return report(plan, store, [records[s.name] for s in specs], counts)


def list_runs(plan: Plan, store: Store) -> tuple[list[RunSpec], dict[str, Variant]]:
    """Every run of the study, seed by seed (an interrupted study holds complete pairs), and each run's row."""
    s, o = plan.settings, plan.options
    specs, variant_of = [], {}
    for seed in range(o.seeds):
        for v in plan.variants:
            spec = RunSpec(cfg=v.config, data=s.data, seed=seed, epochs=s.epochs, imgsz=s.imgsz, batch=s.batch,
                           device=o.device, project=str(store.runs), name=v.run_name(seed), pretrained=s.pretrained,
                           train_args=dict(o.train_args), verbose=o.verbose)
            specs.append(spec)
            variant_of[spec.name] = v
    return specs, variant_of


def find_recorded(store: Store, specs: list[RunSpec],
                  variant_of: dict[str, Variant]) -> tuple[dict[str, RunRecord], list[RunSpec]]:
    """The runs recorded in the folder, and those still to train.

    Raises:
        FileExistsError: If a recorded run was trained with another model than its row's now.
    """
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
    return records, todo


def announce(plan: Plan, store: Store, done: int, todo: list[RunSpec]) -> None:
    """Say what the study will do, and warn where its seeds cannot change the data order."""
    o = plan.options
    LOGGER.info(
        f"{PREFIX} study in {store.out}: {len(plan.variants)} rows x {o.seeds} seeds = {plan.runs} runs; "
        f"{done} already done, {len(todo)} to train ({o.backend} backend)"
        + ("" if o.verbose or not todo else f"; each run's log goes to {store.runs.name}/RUN/train.log")
    )
    if todo and expected_data_order(o.device) == "fixed":
        LOGGER.warning(f"{PREFIX} ultralytics {_compat.ultralytics_version()} shuffles a multi-GPU (DDP) run's data "
                       "the same way at every seed: the seeds will differ in initialisation and augmentation only")


def train(plan: Plan, store: Store, todo: list[RunSpec], records: dict[str, RunRecord],
          variant_of: dict[str, Variant]) -> dict[str, int]:
    """Train what is missing, recording each run atomically as it finishes; return how many were trained, resumed
    and validated again."""
    o = plan.options
    counts = {"trained": 0, "resumed": 0, "revalidated": 0}
    console = Console(todo, plan.runs, o.verbose)

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
        if todo and o.backend == "ray":
            run_ray(todo, on_done, o.address, o.device)
        elif todo:
            run_local(todo, on_done, console)
    except KeyboardInterrupt:
        console.close()
        LOGGER.warning(f"{PREFIX} study interrupted with {len(records)}/{plan.runs} runs recorded; the same call again "
                       "continues the interrupted run and trains what is missing")
        raise
    finally:
        console.close()
    return counts


def report(plan: Plan, store: Store, records: list[RunRecord], counts: dict[str, int]) -> StudyResult:
    """Summarize, judge, cost and weigh every row; write ``study.txt``, ``study.csv`` and ``study.png``."""
    rows = front(measure_costs(judge(summarize(plan, records), plan.options.detect), plan, store.out))
    text = format_table(rows, plan, records=records, latency_note=settings(plan))
    runs = csv_rows(plan, records, rows)
    files = {"txt": store.out / "study.txt", "csv": store.out / "study.csv", "png": store.out / "study.png"}
    write_text(files["txt"], text + "\n")
    write_csv(files["csv"], runs)
    atomic_write(files["png"], lambda tmp: plot_study(rows, tmp, plan))
    versions = sorted({r.ultralytics or "?" for r in records})
    if len(versions) > 1:
        LOGGER.warning(f"{PREFIX} these runs were trained with different ultralytics releases: {', '.join(versions)}")
    total = len(records)
    return StudyResult(out=store.out, rows=rows, runs=runs, table=text, trained=counts["trained"],
                       resumed=counts["resumed"] + counts["revalidated"], reused=total - sum(counts.values()),
                       files=files)
