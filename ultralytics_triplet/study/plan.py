"""A study's plan: its options checked, its rows and its settings, before anything is trained or written.

The checks run in order of cost, so a typo is reported before a dataset is scanned or a config generated.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import _compat
from .._checks import check_checkpoint, check_free_dir, check_int, fail, is_int
from .backends import import_ray
from .fingerprint import check_data, digest, model_identity, sha256_file
from .options import StudyOptions, check_detect, check_runtime
from .variants import Variant, build_variants, check_forms, check_modules, check_references

__all__ = ("FORMAT", "STUDY_FILE", "Plan", "Settings", "make_plan")

FORMAT = 1  # version of study.json / records layout
STUDY_FILE = "study.json"
BACKENDS = ("local", "ray")
RESERVED = {  # set by the study itself for every run, identically
    "data", "model", "epochs", "imgsz", "batch", "seed", "deterministic", "device", "project", "name", "exist_ok",
    "pretrained", "resume", "val", "mode", "task",
}
NOT_FINGERPRINTED = {"workers", "plots", "cache", "save_period"}  # how a run executes, not what it learns


@dataclass(frozen=True)
class Settings:
    """What defines a study, as ``study.json`` stores it: a different value is a different study.

    Attributes:
        format (int): Version of the study's files.
        model (str): The plain model, as given.
        model_sha256 (str): Digest of the plain model's dict.
        task (str): The ultralytics task of the model (``detect``, ``segment``, ...).
        data (str): The dataset YAML (absolute path).
        data_sha256 (str): Digest of the dataset: its YAML, and the names and sizes of its files.
        data_files (int): Files in the dataset.
        nc (int): Its number of classes.
        epochs, imgsz, batch (int): The budget of every run.
        pretrained (str | None): Base weights every row starts from (absolute path), or None for scratch.
        pretrained_sha256 (str | None): Digest of those weights.
        train_args (dict[str, Any]): Further ultralytics train arguments that change what a run learns.
    """

    format: int
    model: str
    model_sha256: str
    task: str
    data: str
    data_sha256: str
    data_files: int
    nc: int
    epochs: int
    imgsz: int
    batch: int
    pretrained: str | None
    pretrained_sha256: str | None
    train_args: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The settings as ``study.json`` stores them (and as the fingerprint digests them)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Plan:
    """Everything a study runs, checked.

    Attributes:
        options (StudyOptions): What the study was asked to do, checked (its lists as tuples). The steps read how
            to run (``seeds``, ``device``, ``backend``, ``latency``, ...) from here.
        settings (Settings): What of it defines the study (what is fingerprinted): the data, model, budget and
            hyper-parameters, resolved.
        fingerprint (str): Digest of ``settings``: a different fingerprint is a different study.
        variants (tuple[Variant, ...]): The plain model first, then the references, then each placement with each
            module (``each-backbone`` expanded).
    """

    options: StudyOptions
    settings: Settings
    fingerprint: str
    variants: tuple[Variant, ...]

    @property
    def plain(self) -> Variant:
        """The plain model every row is compared with."""
        return self.variants[0]

    @property
    def task(self) -> str:
        """The ultralytics task of the model."""
        return self.settings.task

    @property
    def runs(self) -> int:
        """Runs in the study: every row once per seed."""
        return len(self.variants) * self.options.seeds


def make_plan(options: StudyOptions) -> Plan:
    """Check everything the study ``options`` asks for needs, cheapest first; return its plan. Nothing is written.

    Raises:
        FileNotFoundError: If the data, the model, a reference, a placement's config or the pretrained weights do not
            exist.
        FileExistsError: If ``out`` is a file, or a folder holding other files than a study.
        ValueError: On a bad argument (a bad ``after:`` position: the message lists the valid indices).
        ImportError: For ``backend='ray'`` without Ray, or a ``latency`` runtime that is not installed.
    """
    o = options
    check_int("latency_runs", o.latency_runs, 1)
    check_detect(o.detect)
    check_int("seeds", o.seeds, 2)  # a paired interval needs at least 2 seeds
    check_int("epochs", o.epochs, 1)
    check_int("imgsz", o.imgsz, 32)
    if not (is_int(o.batch) and (o.batch >= 1 or o.batch == -1)):
        raise fail(ValueError, "batch", f"must be a positive integer (or -1 for ultralytics' auto batch), "
                   f"got {o.batch!r}")
    if o.backend not in BACKENDS:
        raise fail(ValueError, "backend", f"must be one of {', '.join(BACKENDS)}, got {o.backend!r}")
    clash = sorted(set(o.train_args) & RESERVED)
    if clash:
        raise ValueError(f"train argument{'s' * (len(clash) > 1)} {', '.join(clash)} are set by the study itself")
    placements, references = check_forms(o.model, o.placements), check_references(o.references)
    modules = check_modules(o.modules)
    check_runtime(o.latency)
    if not Path(o.data).exists():  # cheap checks first: nothing below should run for a typo
        raise fail(FileNotFoundError, "data", f"'{o.data}' not found")
    if o.pretrained:
        check_checkpoint("pretrained", o.pretrained)
    out = Path(o.out)
    check_free_dir("out", out, unless=STUDY_FILE)
    if o.backend == "ray":
        import_ray()
    variants, plain = build_variants(o.model, placements, out, modules, references)
    task = _compat.tasks().guess_model_task(plain)
    found = check_data(o.data, task, out)
    settings = Settings(
        format=FORMAT,
        model=str(o.model),
        model_sha256=digest(model_identity(plain)),
        task=task,
        data=found.path,
        data_sha256=found.sha256,
        data_files=found.files,
        nc=found.nc,
        epochs=o.epochs,
        imgsz=o.imgsz,
        batch=o.batch,
        pretrained=str(Path(o.pretrained).resolve()) if o.pretrained else None,
        pretrained_sha256=sha256_file(Path(o.pretrained)) if o.pretrained else None,
        train_args={k: o.train_args[k] for k in sorted(o.train_args) if k not in NOT_FINGERPRINTED},
    )
    checked = dataclasses.replace(o, placements=tuple(placements), modules=tuple(modules),
                                  references=tuple(references), train_args=dict(o.train_args))
    return Plan(options=checked, settings=settings, fingerprint=digest(settings.to_json()), variants=variants)
