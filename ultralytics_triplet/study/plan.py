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
from ..placements import NAMES
from .fingerprint import check_data, digest, model_identity, sha256_file

__all__ = ("FORMAT", "STUDY_FILE", "Plan", "Variant", "make_plan", "variant_configs")

FORMAT = 1  # version of study.json / records layout
STUDY_FILE = "study.json"
BACKENDS = ("local", "ray")
RESERVED = {  # set by the study itself for every run, identically
    "data", "model", "epochs", "imgsz", "batch", "seed", "deterministic", "device", "project", "name", "exist_ok",
    "pretrained", "resume", "val", "mode", "task",
}
NOT_FINGERPRINTED = {"workers", "verbose", "plots", "cache", "save_period"}  # how a run executes, not what it learns


@dataclass(frozen=True)
class Variant:
    """One model of the study.

    Attributes:
        config (str): What ``YOLO()`` is given: a bare config name or a path.
        placement (str | None): The placement's name (``triplet-neck``), None for the plain model.
        sha256 (str): Digest of the model dict, which a recorded run must match.
    """

    config: str
    placement: str | None
    sha256: str

    @property
    def name(self) -> str:
        """The variant's name in the table, the CSV and the chart: its config's file name."""
        return Path(self.config).name

    def run_name(self, seed: int) -> str:
        """Run folder and record name of this variant at ``seed``."""
        return f"{Path(self.config).stem}-seed{seed}"


@dataclass(frozen=True)
class Plan:
    """Everything a study runs, checked.

    Attributes:
        settings (dict[str, Any]): What defines the study (data, model, budget, hyper-parameters, ...), as stored.
        fingerprint (str): Digest of ``settings``: a different fingerprint is a different study.
        variants (tuple[Variant, ...]): The plain model first, then each placement.
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


def variant_configs(model: str | Path, placements: Sequence[str]) -> list[str]:
    """The plain config and one ``STEM-PLACEMENT`` config per placement, in the same folder (or bare, like ``model``).

    Raises:
        ValueError: If a placement is not one of the named placements, or is listed twice.
    """
    unknown = [p for p in placements if p not in NAMES]
    if unknown:
        raise fail(ValueError, "placements", f"has unknown placement{'s' * (len(unknown) > 1)} "
                   f"{', '.join(map(repr, unknown))}; known placements: {', '.join(NAMES)}")
    if len(set(placements)) != len(placements):
        raise fail(ValueError, "placements", f"are listed twice: {' '.join(placements)}")
    model = str(model)
    path = Path(model)
    suffix = path.suffix or ".yaml"
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    if any(stem.endswith(f"-{p}") for p in NAMES):
        raise fail(ValueError, "model", f"must be the plain model, not a placement of it: '{model}'")
    names = [f"{stem}{suffix}", *(f"{stem}-{p}{suffix}" for p in placements)]
    return names if path.name == model else [str(path.with_name(n)) for n in names]


def _resolve_configs(configs: list[str], placements: Sequence[str]) -> list[dict]:
    """Load every config as ultralytics would, before anything trains; return the model dicts.

    Raises:
        FileNotFoundError: If the plain model or a placement's config does not resolve.
    """
    from ..loading import load_model_yaml

    dicts = []
    for i, cfg in enumerate(configs):
        try:
            dicts.append(load_model_yaml(cfg))
        except FileNotFoundError as e:
            if i == 0:
                raise fail(FileNotFoundError, "model", str(e)) from None
            raise fail(FileNotFoundError, "placements", f"'{placements[i - 1]}' has no config for "
                       f"{Path(configs[0]).name}: '{cfg}' does not resolve (neither a file nor a name ultralytics or "
                       "a plugin knows)") from None
    return dicts


def make_plan(
    data: str | Path, model: str | Path, placements: Sequence[str], seeds: int, epochs: int, imgsz: int, batch: int,
    pretrained: str | Path | None, backend: str, out: Path, train_args: dict[str, Any],
) -> Plan:
    """Check everything a study needs, cheapest first; return its plan. Nothing is written.

    Raises:
        FileNotFoundError: If the data, the model, a placement's config or the pretrained weights do not exist.
        FileExistsError: If ``out`` is a file, or a folder holding other files than a study.
        ValueError: On a bad argument.
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
    placements = list(placements)
    if not placements:
        raise fail(ValueError, "placements", f"is empty; known placements: {', '.join(NAMES)}")
    if not Path(data).exists():  # cheap checks first: nothing below should run for a typo
        raise fail(FileNotFoundError, "data", f"'{data}' not found")
    configs = variant_configs(model, placements)
    if pretrained:
        check_checkpoint("pretrained", pretrained)
    check_free_dir("out", out, unless=STUDY_FILE)
    if backend == "ray":
        from .backends import import_ray

        import_ray()
    dicts = _resolve_configs(configs, placements)
    task = _compat.tasks().guess_model_task(dicts[0])
    settings = {
        "format": FORMAT,
        "model": str(model),
        "model_sha256": digest(model_identity(dicts[0])),
        "task": task,
        **check_data(data, task, out),
        "epochs": epochs,
        "imgsz": imgsz,
        "batch": batch,
        "pretrained": str(Path(pretrained).resolve()) if pretrained else None,
        "pretrained_sha256": sha256_file(Path(pretrained)) if pretrained else None,
        "train_args": {k: train_args[k] for k in sorted(train_args) if k not in NOT_FINGERPRINTED},
    }
    variants = tuple(Variant(cfg, placement, digest(model_identity(d)))
                     for cfg, placement, d in zip(configs, [None, *placements], dicts))
    return Plan(settings=settings, fingerprint=digest(settings), variants=variants, task=task, seeds=seeds)
