"""A study's plan: its rows and settings, every argument checked before anything is trained or written.

The checks run in order of cost, so a typo is reported before a dataset is scanned or a config generated.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import _compat
from .._checks import check_checkpoint, check_free_dir, check_int, fail, is_int
from .backends import import_ray
from .fingerprint import check_data, digest, model_identity, sha256_file
from .options import MODULE, check_runtime
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
        settings (Settings): What defines the study.
        fingerprint (str): Digest of ``settings``: a different fingerprint is a different study.
        variants (tuple[Variant, ...]): The plain model first, then the references, then each placement with each
            module (``each-backbone`` expanded).
        seeds (int): Every row trains once per seed ``0..seeds-1``.
        latency (str): The runtime of the latency column (``torch``, ``onnx``, ``openvino``): how costs are
            measured, not a setting of the study.
    """

    settings: Settings
    fingerprint: str
    variants: tuple[Variant, ...]
    seeds: int
    latency: str = "torch"

    @property
    def plain(self) -> Variant:
        """The plain model every row is compared with."""
        return self.variants[0]

    @property
    def task(self) -> str:
        """The ultralytics task of the model."""
        return self.settings.task


def make_plan(
    data: str | Path, model: str | Path, placements: Sequence[str], seeds: int, epochs: int, imgsz: int, batch: int,
    pretrained: str | Path | None, backend: str, out: Path, train_args: dict[str, Any],
    modules: Sequence[str] = (MODULE,), references: Sequence[str] = (), latency: str = "torch",
) -> Plan:
    """Check everything a study needs, cheapest first; return its plan. Nothing is written.

    Raises:
        FileNotFoundError: If the data, the model, a reference, a placement's config or the pretrained weights do not
            exist.
        FileExistsError: If ``out`` is a file, or a folder holding other files than a study.
        ValueError: On a bad argument (a bad ``after:`` position: the message lists the valid indices).
        ImportError: For ``backend='ray'`` without Ray, or a ``latency`` runtime that is not installed.
    """
    check_int("seeds", seeds, 2)  # a paired interval needs at least 2 seeds
    check_int("epochs", epochs, 1)
    check_int("imgsz", imgsz, 32)
    if not (is_int(batch) and (batch >= 1 or batch == -1)):
        raise fail(ValueError, "batch", f"must be a positive integer (or -1 for ultralytics' auto batch), "
                   f"got {batch!r}")
    if backend not in BACKENDS:
        raise fail(ValueError, "backend", f"must be one of {', '.join(BACKENDS)}, got {backend!r}")
    clash = sorted(set(train_args) & RESERVED)
    if clash:
        raise ValueError(f"train argument{'s' * (len(clash) > 1)} {', '.join(clash)} are set by the study itself")
    placements, references = check_forms(model, placements), check_references(references)
    modules = check_modules(modules)
    check_runtime(latency)
    if not Path(data).exists():  # cheap checks first: nothing below should run for a typo
        raise fail(FileNotFoundError, "data", f"'{data}' not found")
    if pretrained:
        check_checkpoint("pretrained", pretrained)
    check_free_dir("out", out, unless=STUDY_FILE)
    if backend == "ray":
        import_ray()
    variants, plain = build_variants(model, placements, out, modules, references)
    task = _compat.tasks().guess_model_task(plain)
    found = check_data(data, task, out)
    settings = Settings(
        format=FORMAT,
        model=str(model),
        model_sha256=digest(model_identity(plain)),
        task=task,
        data=found.path,
        data_sha256=found.sha256,
        data_files=found.files,
        nc=found.nc,
        epochs=epochs,
        imgsz=imgsz,
        batch=batch,
        pretrained=str(Path(pretrained).resolve()) if pretrained else None,
        pretrained_sha256=sha256_file(Path(pretrained)) if pretrained else None,
        train_args={k: train_args[k] for k in sorted(train_args) if k not in NOT_FINGERPRINTED},
    )
    return Plan(settings=settings, fingerprint=digest(settings.to_json()), variants=variants, seeds=seeds,
                latency=latency)
