"""A study's plan: its variants and settings, every argument checked before anything is trained or written.

The checks run in order of cost, so a typo is reported before a dataset is scanned or a config generated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import _compat
from .._checks import check_checkpoint, check_free_dir, check_int, fail, is_int
from .fingerprint import check_data, digest, model_identity, sha256_file
from .variants import Variant, build_variants, check_forms

__all__ = ("FORMAT", "STUDY_FILE", "Plan", "make_plan")

FORMAT = 1  # version of study.json / records layout
STUDY_FILE = "study.json"
BACKENDS = ("local", "ray")
RESERVED = {  # set by the study itself for every run, identically
    "data", "model", "epochs", "imgsz", "batch", "seed", "deterministic", "device", "project", "name", "exist_ok",
    "pretrained", "resume", "val", "mode", "task",
}
NOT_FINGERPRINTED = {"workers", "plots", "cache", "save_period"}  # how a run executes, not what it learns


@dataclass(frozen=True)
class Plan:
    """Everything a study runs, checked.

    Attributes:
        settings (dict[str, Any]): What defines the study (data, model, budget, hyper-parameters, ...), as stored.
        fingerprint (str): Digest of ``settings``: a different fingerprint is a different study.
        variants (tuple[Variant, ...]): The plain model first, then each placement (``each-backbone`` expanded).
        task (str): The ultralytics task of the model (``detect``, ``segment``, ...).
        seeds (int): Every variant trains once per seed ``0..seeds-1``.
    """

    settings: dict[str, Any]
    fingerprint: str
    variants: tuple[Variant, ...]
    task: str
    seeds: int

    @property
    def plain(self) -> Variant:
        """The plain model every placement is compared with."""
        return self.variants[0]


def make_plan(
    data: str | Path, model: str | Path, placements: Sequence[str], seeds: int, epochs: int, imgsz: int, batch: int,
    pretrained: str | Path | None, backend: str, out: Path, train_args: dict[str, Any],
) -> Plan:
    """Check everything a study needs, cheapest first; return its plan. Nothing is written.

    Raises:
        FileNotFoundError: If the data, the model, a placement's config or the pretrained weights do not exist.
        FileExistsError: If ``out`` is a file, or a folder holding other files than a study.
        ValueError: On a bad argument (a bad ``after:`` position: the message lists the valid indices).
        ImportError: For ``backend='ray'`` without Ray installed.
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
    placements = check_forms(model, placements)
    if not Path(data).exists():  # cheap checks first: nothing below should run for a typo
        raise fail(FileNotFoundError, "data", f"'{data}' not found")
    if pretrained:
        check_checkpoint("pretrained", pretrained)
    check_free_dir("out", out, unless=STUDY_FILE)
    if backend == "ray":
        from .backends import import_ray

        import_ray()
    variants, plain = build_variants(model, placements, out)
    task = _compat.tasks().guess_model_task(plain)
    settings = {
        "format": FORMAT,
        "model": str(model),
        "model_sha256": digest(model_identity(plain)),
        "task": task,
        **check_data(data, task, out),
        "epochs": epochs,
        "imgsz": imgsz,
        "batch": batch,
        "pretrained": str(Path(pretrained).resolve()) if pretrained else None,
        "pretrained_sha256": sha256_file(Path(pretrained)) if pretrained else None,
        "train_args": {k: train_args[k] for k in sorted(train_args) if k not in NOT_FINGERPRINTED},
    }
    return Plan(settings=settings, fingerprint=digest(settings), variants=variants, task=task, seeds=seeds)
