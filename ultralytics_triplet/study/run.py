"""One training run of a study: train (or continue, or finish recording) one row at one seed.

The same function runs in the calling process (local backend) and in Ray worker processes, so what it takes and
returns are module-level dataclasses, which pickle. Each run prints into its own ``train.log`` (see ``console``) and
shuffles its data by its seed on every supported ultralytics release (see ``data_order``). What it records is read
from ultralytics' own outputs: the validator's metrics and ``results.csv``.

ultralytics appends an epoch's row to ``results.csv`` before it saves ``last.pt``. An interrupt between the two leaves
a row for an epoch that ``last.pt`` does not hold; the resume trains that epoch again and appends a second row with the
same epoch number. So the epochs are read from the file's ``epoch`` column, and where one appears twice the later row
counts: the finished model continued from it, while the earlier row belongs to training whose weights were lost.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import platform
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ultralytics import YOLO

from .. import _compat
from ..loading import load_checkpoint
from .console import LOG_FILE, captured
from .data_order import expected_data_order, seed_data_order

__all__ = ("SESSIONS_FILE", "RunRecord", "RunSpec", "read_results_csv", "run_training", "train_seconds",
           "trained_rows")

SESSIONS_FILE = "sessions.txt"  # in a resumed run's folder: the results.csv rows there were as each resume began


@dataclass(frozen=True)
class RunSpec:
    """What one run trains.

    Attributes:
        cfg (str): The variant's config, as ``YOLO()`` takes it.
        data (str): The dataset YAML (absolute path).
        seed (int): The training seed.
        epochs, imgsz, batch: The study's budget.
        device (str | int | None): ultralytics' ``device``.
        project (str): The study's ``runs/`` folder; the run trains in ``project/name``.
        name (str): The run's name (``<config stem>-seed<k>``).
        pretrained (str | None): Base weights every variant starts from.
        train_args (dict[str, Any]): Further ultralytics train arguments.
        ray_gpus (int): GPUs Ray assigned to this task (0 outside Ray).
        verbose (bool): Print the run's log to the console (it always goes to ``train.log`` in the run folder).
    """

    cfg: str
    data: str
    seed: int
    epochs: int
    imgsz: int
    batch: int
    device: Any
    project: str
    name: str
    pretrained: str | None = None
    train_args: dict[str, Any] = field(default_factory=dict)
    ray_gpus: int = 0
    verbose: bool = False

    @property
    def run_dir(self) -> Path:
        """The ultralytics run folder."""
        return Path(self.project) / self.name


@dataclass
class RunRecord:
    """What a finished run leaves in ``records/RUN.json``.

    Attributes:
        config (str): The variant's config file name.
        seed (int): The training seed.
        run (str): The run's name.
        status (str): ``trained``, ``resumed`` (an interrupted run continued) or ``revalidated`` (a finished but
            unrecorded run, validated again from ``best.pt``).
        metrics (dict[str, float]): The final validation metrics (ultralytics' ``results_dict``).
        epochs_done (int): Epochs in ``results.csv``'s epoch column (an epoch trained again after a resume counts once).
        train_time_s (float): ultralytics' epoch-loop time of those epochs, summed over sessions (see
            :func:`train_seconds`; the wall time of this call where ``results.csv`` has no time column, as on
            ultralytics 8.3).
        wall_s (float): Wall time of this call.
        run_dir (str): The run folder; relative to the study folder once recorded.
        weights (str): ``best.pt`` (or ``last.pt``); relative to the study folder once recorded.
        host (str): The machine that trained it.
        pid (int): The process that trained it.
        package (str): Where this package was imported from in that process.
        ultralytics (str): The ultralytics release that trained it.
        config_sha256 (str): Digest of the variant's model dict when it trained.
        placement (str | None): The variant's placement (None for the plain model).
        data_order (str): ``seed`` if its training data was shuffled by its seed, ``fixed`` if the same way at every
            seed (ultralytics 8.3 with DDP), ``""`` if not known.
    """

    config: str
    seed: int
    run: str
    status: str
    metrics: dict[str, float]
    epochs_done: int
    train_time_s: float
    wall_s: float
    run_dir: str
    weights: str
    host: str = ""
    pid: int = 0
    package: str = ""
    ultralytics: str = ""
    config_sha256: str = ""
    placement: str | None = None
    data_order: str = ""

    def to_json(self) -> dict[str, Any]:
        """The record as ``records/RUN.json`` stores it."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RunRecord:
        """Read a record written by :meth:`to_json` (unknown keys are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def read_results_csv(path: Path) -> list[dict[str, float]]:
    """Rows of an ultralytics ``results.csv`` in file order, with stripped keys and float values (a row that does not
    parse, or has no epoch, is left out)."""
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        rows = []
        for r in csv.DictReader(f):
            try:
                row = {k.strip(): float(v) for k, v in r.items() if k}
            except (TypeError, ValueError):
                continue
            if "epoch" in row:
                rows.append(row)
    return rows


def trained_rows(rows: list[dict[str, float]]) -> list[dict[str, float]]:
    """The rows of the epochs the run's weights went through: one per epoch, in epoch order, the later row where an
    epoch appears twice (an epoch trained again after a resume; see the module's docstring)."""
    by_epoch = {}
    for r in rows:
        by_epoch[r["epoch"]] = r
    return [by_epoch[epoch] for epoch in sorted(by_epoch)]


def train_seconds(rows: list[dict[str, float]], starts: Iterable[int] = ()) -> float | None:
    """Training time of the epochs :func:`trained_rows` keeps, from ``results.csv``'s time column.

    The column counts the seconds since the training session began, so an epoch took the difference to the row before
    it in its session, or the whole value in a session's first row. A session begins at the first row, at each index
    in ``starts`` (where the study resumed the run), and wherever the time or the epoch goes back (a resume it did not
    note). An epoch trained twice counts once, with its later row.

    Args:
        rows (list[dict[str, float]]): The file's rows, as :func:`read_results_csv` returns them.
        starts (Iterable[int]): Indices in ``rows`` where a session is known to begin.

    Returns:
        (float | None): Seconds; None when the file has no time column (ultralytics 8.3).
    """
    if not any(_compat.TIME_COLUMN in r for r in rows):
        return None
    starts = set(starts)
    took: dict[float, float] = {}
    last: tuple[float, float] | None = None  # (time, epoch) of the session's previous row
    for i, r in enumerate(rows):
        if i in starts:
            last = None
        t = r.get(_compat.TIME_COLUMN, math.nan)
        if math.isnan(t):
            continue
        if last is not None and (t < last[0] or r["epoch"] <= last[1]):
            last = None  # a resumed session: its clock restarted
        took[r["epoch"]] = t - (last[0] if last is not None else 0.0)
        last = (t, r["epoch"])
    return sum(took.values())


def _session_starts(run_dir: Path) -> list[int]:
    """The row indices in ``results.csv`` where the study resumed the run (from :data:`SESSIONS_FILE`)."""
    path = run_dir / SESSIONS_FILE
    if not path.is_file():
        return []
    return [int(line) for line in path.read_text(encoding="utf-8").split() if line.isdigit()]


def _note_session(run_dir: Path) -> None:
    """Note in :data:`SESSIONS_FILE` that a resumed session begins after the rows ``results.csv`` holds now."""
    with open(run_dir / SESSIONS_FILE, "a", encoding="utf-8") as f:
        f.write(f"{len(read_results_csv(run_dir / 'results.csv'))}\n")


def _run_state(run_dir: Path, epochs: int) -> str:
    """``fresh``, ``resumable`` (an interrupted run's last.pt) or ``trained`` (finished, not yet recorded)."""
    last, best = run_dir / "weights" / "last.pt", run_dir / "weights" / "best.pt"
    if not last.is_file():
        return "fresh"
    try:
        ckpt = load_checkpoint(last)[1]
    except (ValueError, OSError):
        return "fresh"  # a checkpoint cut short by the interruption: nothing to continue from
    epoch = ckpt.get("epoch", -1)
    if ckpt.get("optimizer") is not None and 0 <= epoch < epochs - 1:
        return "resumable"
    return "trained" if best.is_file() else "fresh"


def _results_dict(metrics: Any, best: Path) -> dict[str, float]:
    """Final validation metrics: from the trainer's validator, or best.pt's ``train_metrics`` (DDP runs)."""
    rd = getattr(metrics, "results_dict", None)
    if rd is None and isinstance(metrics, dict):
        rd = metrics
    if not rd and best.is_file():
        rd = load_checkpoint(best)[1].get("train_metrics") or {}
    return {k: float(v) for k, v in (rd or {}).items()}


def _worker_device(spec: RunSpec) -> Any:
    """The ``device`` argument inside this process: the GPUs Ray assigned to the task, or the study's ``device``."""
    n = spec.ray_gpus
    if not n:
        return spec.device
    # Ray restricts CUDA_VISIBLE_DEVICES to the task's GPUs. ultralytics 8.3 writes `device` into that variable
    # (so it needs the physical ids), later releases read `device` as torch indices within it.
    if _compat.cuda_ids_are_physical():
        return os.environ.get("CUDA_VISIBLE_DEVICES") or ",".join(map(str, range(n)))
    return ",".join(map(str, range(n)))


def _with_callbacks(model: Any, seeded: dict, on_epoch: Callable[[int, int], None] | None) -> Any:
    """Add the run's callbacks to a ``YOLO`` model: the seeded data order (where the release needs it), progress."""
    seed_data_order(model, seeded)
    if on_epoch is not None:
        model.add_callback("on_fit_epoch_end", lambda trainer: on_epoch(trainer.epoch + 1, trainer.epochs))
    return model


def run_training(spec: RunSpec, on_epoch: Callable[[int, int], None] | None = None,
                 write: Callable[[str], None] | None = None) -> RunRecord:
    """Train (or continue, or finish recording) one run of a study; return its record.

    An interrupted run (its ``last.pt`` holds an optimizer state) is continued with ultralytics' ``resume``; a run
    that finished without being recorded is validated again from ``best.pt``; anything else starts afresh in an
    emptied run folder. What the run prints goes to ``train.log`` in its folder (see :func:`console.captured`).

    Args:
        spec (RunSpec): The run.
        on_epoch (Callable[[int, int], None] | None): Called with (epoch, epochs) after each epoch trained here.
        write (Callable[[str], None] | None): Writes a warning line on the console (default: standard error).
    """
    _compat.require_patched("training a study run")  # a Ray worker: armed by the start-up hook like any process
    run_dir = spec.run_dir
    best, last = run_dir / "weights" / "best.pt", run_dir / "weights" / "last.pt"
    device = _worker_device(spec)
    run_args = {k: v for k, v in spec.train_args.items() if k in ("workers", "cache")}
    t0 = time.perf_counter()
    state = _run_state(run_dir, spec.epochs)
    if state == "fresh" and run_dir.exists():
        shutil.rmtree(run_dir)  # an earlier attempt that left nothing to continue from (ours: under runs/)
    seeded = {"applied": False}
    with captured(run_dir / LOG_FILE, spec.verbose, label=spec.name, write=write):
        if state == "resumable":
            model = _with_callbacks(YOLO(str(last)), seeded, on_epoch)
            _note_session(run_dir)
            metrics = model.train(resume=True, device=device, **run_args)
            status = "resumed"
        elif state == "trained":
            metrics = YOLO(str(best)).val(
                data=spec.data, imgsz=spec.imgsz, batch=spec.batch if spec.batch > 0 else 16, device=device,
                plots=False, project=str(run_dir), name="revalidation", exist_ok=True,
            )
            status = "revalidated"
        else:
            model = _with_callbacks(YOLO(spec.cfg), seeded, on_epoch)
            metrics = model.train(
                data=spec.data, epochs=spec.epochs, imgsz=spec.imgsz, batch=spec.batch, seed=spec.seed,
                deterministic=True, device=device, project=spec.project, name=spec.name, exist_ok=True,
                pretrained=spec.pretrained or False, val=True, plots=spec.train_args.get("plots", False),
                **{k: v for k, v in spec.train_args.items() if k != "plots"},
            )
            status = "trained"
    if status == "revalidated":
        data_order = expected_data_order(device)
    else:
        data_order = "seed" if _compat.shuffle_follows_seed() or seeded["applied"] else "fixed"
    wall = time.perf_counter() - t0
    rows = read_results_csv(run_dir / "results.csv")
    train_time = train_seconds(rows, _session_starts(run_dir))
    return RunRecord(
        config=Path(spec.cfg).name,
        seed=spec.seed,
        run=spec.name,
        status=status,
        metrics=_results_dict(metrics, best),
        epochs_done=len(trained_rows(rows)),
        train_time_s=wall if train_time is None else train_time,
        wall_s=wall,
        run_dir=str(run_dir),
        weights=str(best if best.is_file() else last),
        host=platform.node(),
        pid=os.getpid(),
        package=str(Path(__file__).parents[1]),
        ultralytics=_compat.ultralytics_version(),
        data_order=data_order,
    )
