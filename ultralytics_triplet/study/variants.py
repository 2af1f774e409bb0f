"""What a study trains: the plain model and one variant per placement, each named by what it is.

A placement is written in one of three forms:

- a named placement (``placements.NAMES``): the config ``STEM-triplet-neck.yaml`` beside the model (``yolo11n.yaml``
  -> ``yolo11n-triplet-neck.yaml``), resolved as ultralytics resolves any name;
- ``after:I[,J...]``: one TripletAttention row after each of the layers I, J, ... of the model (backbone and head
  counted together, as :func:`~ultralytics_triplet.surgery.insert_layers` counts them), built with ``insert_layers``
  and written with ``write_yaml`` into the study folder as ``models/STEM+TA@I,J.yaml`` (the scale letter stays in
  the name, where ultralytics reads it);
- ``each-backbone``: ``after:I`` for every backbone layer I, one variant each.

Every variant's identity is its model dict (a digest of it): a recorded run is reused only for the same network.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .._checks import fail
from ..placements import NAMES
from .fingerprint import digest, model_identity

__all__ = ("AFTER", "EACH_BACKBONE", "FORMS", "MODELS_DIR", "Variant", "build_variants", "check_forms",
           "write_configs")

AFTER = "after:"  # after:4 or after:4,6,8
EACH_BACKBONE = "each-backbone"
FORMS = (*NAMES, f"{AFTER}I[,J...]", EACH_BACKBONE)  # how the errors and the help list the placement forms
MODELS_DIR = "models"  # the study folder's configs of the after: variants
MARK = "+TA@"  # yolov5n.yaml with TripletAttention after layers 4 and 6: yolov5n+TA@4,6.yaml
_INDEX = re.compile(r"-?\d+")


@dataclass(frozen=True)
class Variant:
    """One model of the study.

    Attributes:
        config (str): What ``YOLO()`` is given: a bare config name or a path.
        placement (str | None): The placement as written in its canonical form (``triplet-neck``, ``after:4,6``),
            None for the plain model.
        sha256 (str): Digest of the model dict, which a recorded run must match.
        model (dict | None): The model dict the study writes at ``config`` (``after:`` placements), else None.
        inserted (tuple[int, ...]): The rows of ``model`` that are inserted (marked in the written file).
    """

    config: str
    placement: str | None
    sha256: str
    model: dict | None = field(default=None, compare=False, repr=False)
    inserted: tuple[int, ...] = ()

    @property
    def name(self) -> str:
        """The variant's name in the table, the CSV and the chart: its config's file name."""
        return Path(self.config).name

    def run_name(self, seed: int) -> str:
        """Run folder and record name of this variant at ``seed``."""
        return f"{Path(self.config).stem}-seed{seed}"


def _split(model: str | Path) -> tuple[Path, str, str]:
    """``model`` as a path, its stem and its suffix (``.yaml`` when it has none)."""
    path = Path(str(model))
    suffix = path.suffix or ".yaml"
    return path, path.name[: -len(path.suffix)] if path.suffix else path.name, suffix


def check_forms(model: str | Path, placements: Sequence[str]) -> list[str]:
    """Check that each placement is written in a known form and listed once, and that ``model`` is a plain model.

    Cheap: nothing is loaded. The positions of ``after:`` placements are checked against the model later.

    Returns:
        (list[str]): The placements.

    Raises:
        ValueError: On an unknown form, a placement listed twice, an empty list, or a placement's config as model.
    """
    placements = [placements] if isinstance(placements, str) else list(placements)
    known = f"known placements: {', '.join(FORMS)}"
    if not placements:
        raise fail(ValueError, "placements", f"is empty; {known}")
    unknown = [p for p in placements if not (p in NAMES or p == EACH_BACKBONE or str(p).startswith(AFTER))]
    if unknown:
        raise fail(ValueError, "placements", f"has unknown placement{'s' * (len(unknown) > 1)} "
                   f"{', '.join(map(repr, unknown))}; {known}")
    if len(set(placements)) != len(placements):
        raise fail(ValueError, "placements", f"are listed twice: {' '.join(placements)}")
    _, stem, _ = _split(model)
    if any(stem.endswith(f"-{p}") for p in NAMES) or MARK in stem:
        raise fail(ValueError, "model", f"must be the plain model, not a placement of it: '{model}'")
    return placements


def _named_config(model: str | Path, placement: str) -> str:
    """The config of a named placement: ``STEM-PLACEMENT.yaml`` in the model's folder (or bare, like ``model``)."""
    path, stem, suffix = _split(model)
    name = f"{stem}-{placement}{suffix}"
    return name if path.name == str(model) else str(path.with_name(name))


def _positions(placement: str, n_layers: int, n_backbone: int) -> list[int]:
    """The layer indices of an ``after:`` placement, checked against a model of ``n_layers`` rows, sorted.

    Raises:
        ValueError: If one is not an integer, out of range or listed twice; the message lists the valid indices.
    """
    from ..surgery import check_after

    text = placement[len(AFTER):].strip()
    values = [int(v) if _INDEX.fullmatch(v) else v for v in (v.strip() for v in text.split(","))] if text else []
    try:
        return sorted(check_after(values, n_layers, what=f"'{placement}'"))
    except ValueError as e:
        raise fail(ValueError, "placements", f"{e}; the backbone is 0..{n_backbone - 1}") from None


def _load(cfg: str, param: str, missing: str) -> dict:
    """Load a model config as ultralytics would; a missing one is a one-line error naming ``param``."""
    from ..loading import load_model_yaml

    try:
        return load_model_yaml(cfg)
    except FileNotFoundError as e:
        raise fail(FileNotFoundError, param, missing or str(e)) from None


def _after_variant(plain: dict, model: str | Path, placement: str, points: list[int], folder: Path) -> Variant:
    """The ``after:`` variant of ``plain`` with TripletAttention after ``points``, to be written into ``folder``."""
    from ..surgery import insert_layers_with_rows

    _, stem, suffix = _split(model)
    d, rows = insert_layers_with_rows(plain, after=points)
    d.pop("yaml_file", None)
    config = folder / f"{stem}{MARK}{','.join(map(str, points))}{suffix}"
    return Variant(str(config), placement, digest(model_identity(d)), d, tuple(rows))


def build_variants(model: str | Path, placements: Sequence[str], out: Path) -> tuple[tuple[Variant, ...], dict]:
    """The plain model first, then one variant per placement (``each-backbone`` expanded in place); the plain dict.

    Every config is loaded (named ones resolved, ``after:`` ones built in memory) before anything trains; nothing is
    written.

    Raises:
        FileNotFoundError: If the plain model or a named placement's config does not resolve.
        ValueError: On a bad position (the message lists the valid indices) or two placements that build the same
            model.
    """
    from ..surgery import model_rows

    placements = check_forms(model, placements)
    plain = _load(str(model), "model", "")
    n_layers, n_backbone = len(model_rows(plain)), len(plain["backbone"])
    folder = (out / MODELS_DIR).resolve()
    variants = [Variant(str(model), None, digest(model_identity(plain)))]
    written = [None]  # how each variant was asked for, for the message about two that build the same model
    for p in placements:
        if p == EACH_BACKBONE:
            variants += [_after_variant(plain, model, f"{AFTER}{i}", [i], folder) for i in range(n_backbone)]
            written += [f"{p} ({AFTER}{i})" for i in range(n_backbone)]
            continue
        if p.startswith(AFTER):
            points = _positions(p, n_layers, n_backbone)
            variants.append(_after_variant(plain, model, f"{AFTER}{','.join(map(str, points))}", points, folder))
        else:
            cfg = _named_config(model, p)
            d = _load(cfg, "placements", f"'{p}' has no config for {Path(str(model)).name}: '{cfg}' does not resolve "
                      "(neither a file nor a name ultralytics or a plugin knows)")
            variants.append(Variant(cfg, p, digest(model_identity(d))))
        written.append(p)
    seen: dict[str, str | None] = {}
    for v, p in zip(variants, written):
        if v.sha256 in seen:
            first = seen[v.sha256]
            raise fail(ValueError, "placements", f"'{first}' and '{p}' build the same model: list it once" if first
                       else f"'{p}' builds the plain model itself: its config has no TripletAttention row")
        seen[v.sha256] = p
    return tuple(variants), plain


def _header(v: Variant, plain: str) -> str:
    """The comment block on top of an ``after:`` variant's config."""
    points = v.placement[len(AFTER):].split(",")
    return (
        f"{v.name}: {plain} with TripletAttention after layer{'s' * (len(points) > 1)} {', '.join(points)} "
        f"(study placement {v.placement}).\n"
        'Triplet Attention: Misra et al., "Rotate to Attend: Convolutional Triplet Attention Module", WACV 2021.\n'
        f"Written by ultralytics-triplet study with insert_layers(after=[{', '.join(points)}]) + write_yaml.\n"
        'Rows marked "# inserted by ultralytics-triplet" are new; later indices are re-wired.\n'
    )


def write_configs(variants: Sequence[Variant]) -> None:
    """Write each ``after:`` variant's config where ``YOLO()`` will read it, unless it already holds that text."""
    from .._files import atomic_write
    from ..surgery import write_yaml, yaml_text

    plain = variants[0].name
    for v in variants:
        if v.model is None:
            continue
        path, header = Path(v.config), _header(v, plain)
        if path.is_file() and path.read_text(encoding="utf-8") == yaml_text(v.model, set(v.inserted), header):
            continue
        atomic_write(path, lambda tmp, v=v, header=header: write_yaml(v.model, tmp, v.inserted, force=True,
                                                                       header=header))
