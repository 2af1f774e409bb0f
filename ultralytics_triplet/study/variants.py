"""What a study trains: the plain model, its references, and each placement built with each module, named by what it is.

A placement is written in one of three forms:

- a named placement (``placements.NAMES``): with TripletAttention, the config ``STEM-triplet-neck.yaml`` beside the
  model (``yolo11n.yaml`` -> ``yolo11n-triplet-neck.yaml``), resolved as ultralytics resolves any name; with another
  module M, the same rule (``placements.insertion_points``) applied to the model, written as
  ``models/STEM-M-neck.yaml``;
- ``after:I[,J...]``: one row of the module after each of the layers I, J, ... of the model (backbone and head
  counted together, as :func:`~ultralytics_triplet.surgery.insert_layers` counts them), written into the study
  folder as ``models/STEM+TA@I,J.yaml`` (``+CBAM@I,J`` for CBAM; the scale letter stays in the name, where
  ultralytics reads it);
- ``each-backbone``: ``after:I`` for every backbone layer I, one variant each.

A module is any name the plugin registry holds (TripletAttention, ultralytics' CBAM, a third-party plugin's). A
reference is another plain model trained alike: a config, or ``scale-up``, the model at its next scale letter
(``yolov5n.yaml`` -> ``yolov5s.yaml``).

Every variant's identity is its model dict (a digest of it): a recorded run is reused only for the same network.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .._checks import fail
from ..loading import check_model_dict, load_model_yaml
from ..placements import NAMES, PLACEMENTS, insertion_points
from ..plugins import registry
from ..surgery import TRIPLET_CITATION, check_after, insert_layers_with_rows, model_rows, write_config
from .fingerprint import digest, model_identity
from .options import AFTER, EACH_BACKBONE, FORMS, MODULE, SCALE_UP

__all__ = ("MODELS_DIR", "Role", "Variant", "build_variants", "check_forms", "check_modules", "check_references",
           "write_configs")

MODELS_DIR = "models"  # the study folder's configs of the variants it builds itself
_INDEX = re.compile(r"-?\d+")
_MARKED = re.compile(r"\+\w+@")  # yolov5n+TA@4,6.yaml: TripletAttention after layers 4 and 6
_SCALE = re.compile(r"yolo(?:e-)?v?\d+([nslmx])")  # the scale letter ultralytics reads from a name (guess_model_scale)


class Role(enum.Enum):
    """What a row is to the study (its value is how ``study.csv`` names it)."""

    PLAIN = "plain"  # the model every row is compared with
    REFERENCE = "reference"  # another plain model, trained alike
    VARIANT = "variant"  # the model with a module inserted


@dataclass(frozen=True)
class Variant:
    """One model of the study.

    Attributes:
        config (str): What ``YOLO()`` is given: a bare config name or a path.
        role (Role): The plain model, a reference or a variant.
        sha256 (str): Digest of the model dict, which a recorded run must match.
        placement (str | None): A variant's placement in its canonical form (``triplet-neck``, ``after:4,6``).
        module (str | None): The module a variant inserts (``TripletAttention``, ``CBAM``).
        model (dict | None): The model dict the study writes at ``config`` itself, else None.
        inserted (tuple[int, ...]): The rows of ``model`` that are inserted (marked in the written file).
        header (str): The comment block on top of the written file.
    """

    config: str
    role: Role
    sha256: str
    placement: str | None = None
    module: str | None = None
    model: dict | None = field(default=None, compare=False, repr=False)
    inserted: tuple[int, ...] = ()
    header: str = field(default="", compare=False, repr=False)

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


def _as_list(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def check_forms(model: str | Path, placements: Sequence[str]) -> list[str]:
    """Check that each placement is written in a known form and listed once, and that ``model`` is a plain model.

    Cheap: nothing is loaded. The positions of ``after:`` placements are checked against the model later.

    Returns:
        (list[str]): The placements.

    Raises:
        ValueError: On an unknown form, a placement listed twice, an empty list, or a placement's config as model.
    """
    placements = _as_list(placements)
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
    if any(stem.endswith(f"-{p}") for p in NAMES) or _MARKED.search(stem):
        raise fail(ValueError, "model", f"must be the plain model, not a placement of it: '{model}'")
    return placements


def check_modules(modules: str | Sequence[str]) -> list[str]:
    """Check that each module is one the plugin registry holds, listed once.

    Raises:
        ValueError: On an empty list, an unknown name (the message lists the registered ones) or a name listed twice.
    """
    modules = _as_list(modules)
    held = registry()
    known = f"registered modules: {', '.join(f'{n} ({held.owners[n]})' for n in held.modules)}"
    if not modules:
        raise fail(ValueError, "modules", f"is empty; {known}")
    unknown = [m for m in modules if m not in held.modules]
    if unknown:
        raise fail(ValueError, "modules", f"has unknown module{'s' * (len(unknown) > 1)} "
                   f"{', '.join(map(repr, unknown))}; {known}")
    if len(set(modules)) != len(modules):
        raise fail(ValueError, "modules", f"are listed twice: {' '.join(modules)}")
    return modules


def check_references(references: str | Sequence[str]) -> list[str]:
    """Check that each reference is ``scale-up`` or a config name or path (``.yaml``), listed once. Cheap.

    Raises:
        ValueError: On another suffix or a reference listed twice.
    """
    references = _as_list(references)
    for r in references:
        if r != SCALE_UP and Path(str(r)).suffix.lower() not in (".yaml", ".yml"):
            raise fail(ValueError, "references", f"'{r}' is neither {SCALE_UP} nor a model config (.yaml)")
    if len(set(map(str, references))) != len(references):
        raise fail(ValueError, "references", f"are listed twice: {' '.join(map(str, references))}")
    return references


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
    text = placement[len(AFTER):].strip()
    values = [int(v) if _INDEX.fullmatch(v) else v for v in (v.strip() for v in text.split(","))] if text else []
    try:
        return sorted(check_after(values, n_layers, what=f"'{placement}'"))
    except ValueError as e:
        raise fail(ValueError, "placements", f"{e}; the backbone is 0..{n_backbone - 1}") from None


def _load(cfg: str, param: str, missing: str) -> dict:
    """Load a model config as ultralytics would; a missing one is a one-line error naming ``param``."""
    try:
        return load_model_yaml(cfg)
    except FileNotFoundError as e:
        raise fail(FileNotFoundError, param, missing or str(e)) from None


def _citation(module: str) -> str:
    """The line that says what ``module`` is: the paper for TripletAttention, else the class and its plugin."""
    if module == MODULE:
        return TRIPLET_CITATION
    held = registry()
    cls = held.modules[module]
    return f"{module}: {cls.__module__}.{cls.__qualname__}, registered by plugin '{held.owners[module]}'."


def _inserted(plain: dict, model: str | Path, placement: str, module: str, points: list[int], config: Path,
              where: str) -> Variant:
    """The variant of ``plain`` with ``module`` after ``points`` (``where`` in words), to be written as ``config``."""
    d, rows = insert_layers_with_rows(plain, after=points, module=module)
    d.pop("yaml_file", None)
    try:
        check_model_dict(d, f"{Path(str(model)).name} with {module}")
    except ValueError as e:
        raise fail(ValueError, "modules", f"'{module}' does not build at '{placement}': {e}") from None
    header = (
        f"{config.name}: {Path(str(model)).name} with {module} {where} (study placement {placement}).\n"
        f"{_citation(module)}\n"
        f"Written by ultralytics-triplet study with insert_layers(after={points}, module='{module}') + write_yaml.\n"
        'Rows marked "# inserted by ultralytics-triplet" are new; later indices are re-wired.\n'
    )
    return Variant(str(config), Role.VARIANT, digest(model_identity(d)), placement, module, d, tuple(rows), header)


def _after_variant(plain: dict, model: str | Path, placement: str, points: list[int], module: str,
                   folder: Path) -> Variant:
    """The ``after:`` variant: ``STEM+TA@I,J.yaml`` (``+M@`` for another module M)."""
    _, stem, suffix = _split(model)
    mark = "TA" if module == MODULE else module
    where = f"after layer{'s' * (len(points) > 1)} {', '.join(map(str, points))}"
    name = f"{stem}+{mark}@{','.join(map(str, points))}{suffix}"
    return _inserted(plain, model, placement, module, points, folder / name, where)


def _named_variant(plain: dict, model: str | Path, placement: str, module: str, folder: Path) -> Variant:
    """A named placement: TripletAttention's config resolved by name, another module's built by the same rule."""
    if module == MODULE:
        cfg = _named_config(model, placement)
        d = _load(cfg, "placements", f"'{placement}' has no config for {Path(str(model)).name}: '{cfg}' does not "
                  "resolve (neither a file nor a name ultralytics or a plugin knows)")
        return Variant(cfg, Role.VARIANT, digest(model_identity(d)), placement, module)
    _, stem, suffix = _split(model)
    rule = placement[len(NAMES[0]):]  # "", "-neck" or "-dense"
    return _inserted(plain, model, placement, module, insertion_points(plain, rule),
                     folder / f"{stem}-{module}{rule}{suffix}", PLACEMENTS[rule])


def _scale_up(model: str | Path, plain: dict, folder: Path) -> Variant:
    """``model`` at its next scale letter: by name for a name ultralytics resolves, else a copy in ``folder``.

    Raises:
        ValueError: If the model has no larger scale (the message names the valid choices).
    """
    path, stem, suffix = _split(model)
    scales = list(plain.get("scales") or {})
    m = _SCALE.search(stem)
    if not scales or m is None or m[1] != plain.get("scale") or m[1] not in scales:
        raise fail(ValueError, "references", f"'{SCALE_UP}': {path.name} has no scale to go up from (ultralytics "
                   "reads one from a name such as yolov8n.yaml, among the scales its config lists); valid choices: a "
                   "model config (.yaml) instead")
    k = scales.index(m[1])
    family = [f"{stem[:m.start(1)]}{s}{stem[m.end(1):]}{suffix}" for s in scales]
    if k + 1 == len(scales):
        raise fail(ValueError, "references", f"'{SCALE_UP}': {path.name} is the largest scale of its family "
                   f"({', '.join(scales)}); valid choices: a model config, e.g. {', '.join(family[:k])}")
    name = family[k + 1]
    if path.name == str(model):  # a bare name: ultralytics resolves the next scale as it resolves the model
        return Variant(name, Role.REFERENCE, digest(model_identity(_load(name, "references", ""))))
    d = {key: v for key, v in plain.items() if key != "yaml_file"}
    d["scale"] = scales[k + 1]  # read back from the file name when the copy is loaded
    header = f"{name}: {path.name} at scale {scales[k + 1]} (study reference {SCALE_UP}).\n"
    return Variant(str(folder / name), Role.REFERENCE, digest(model_identity(d)), model=d, header=header)


def _reference(ref: str, model: str | Path, plain: dict, folder: Path) -> Variant:
    """One reference: ``scale-up`` or a config, loaded as ultralytics loads it."""
    if ref == SCALE_UP:
        return _scale_up(model, plain, folder)
    d = _load(str(ref), "references", f"'{ref}' does not resolve (neither a file nor a name ultralytics or a "
              "plugin knows)")
    return Variant(str(ref), Role.REFERENCE, digest(model_identity(d)))


def build_variants(
    model: str | Path, placements: Sequence[str], out: Path, modules: Sequence[str] = (MODULE,),
    references: Sequence[str] = (),
) -> tuple[tuple[Variant, ...], dict]:
    """The plain model first, then each reference, then each placement with each module; and the plain dict.

    ``each-backbone`` expands in place. Every config is loaded (named ones resolved, the others built in memory and
    parsed) before anything trains; nothing is written.

    Raises:
        FileNotFoundError: If the plain model, a reference or a named placement's config does not resolve.
        ValueError: On a bad position (the message lists the valid indices), a module that does not build there, a
            ``scale-up`` without a larger scale, or two rows that build the same model.
    """
    placements, modules, references = check_forms(model, placements), check_modules(modules), check_references(
        references)
    plain = _load(str(model), "model", "")
    n_layers, n_backbone = len(model_rows(plain)), len(plain["backbone"])
    folder = (out / MODELS_DIR).resolve()
    variants = [Variant(str(model), Role.PLAIN, digest(model_identity(plain)))]
    asked = [(None, "model")]  # how each row was asked for, for the message about two that build the same model
    for ref in references:
        variants.append(_reference(ref, model, plain, folder))
        asked.append((f"{ref}", "references"))
    for p in placements:
        for module in modules:
            label = p if module == MODULE else f"{p} with {module}"
            if p == EACH_BACKBONE:
                variants += [_after_variant(plain, model, f"{AFTER}{i}", [i], module, folder)
                             for i in range(n_backbone)]
                asked += [(f"{label} ({AFTER}{i})", "placements") for i in range(n_backbone)]
                continue
            if p.startswith(AFTER):
                points = _positions(p, n_layers, n_backbone)
                variants.append(_after_variant(plain, model, f"{AFTER}{','.join(map(str, points))}", points, module,
                                               folder))
            else:
                variants.append(_named_variant(plain, model, p, module, folder))
            asked.append((label, "placements"))
    _check_distinct(variants, asked)
    return tuple(variants), plain


def _check_distinct(variants: list[Variant], asked: list[tuple[str | None, str]]) -> None:
    """Refuse two rows that build the same model, or that would share a name (and so a run folder)."""
    seen: dict[str, str | None] = {}
    names: dict[str, str | None] = {}
    for v, (label, param) in zip(variants, asked):
        if v.sha256 in seen:
            first = seen[v.sha256]
            raise fail(ValueError, param, f"'{first}' and '{label}' build the same model: list it once" if first
                       else f"'{label}' builds the plain model itself" + (": its config has no inserted row"
                                                                           if v.role is Role.VARIANT else ""))
        if v.name in names:
            raise fail(ValueError, param, f"'{names[v.name] or v.config}' and '{label}' would both be named {v.name}")
        seen[v.sha256], names[v.name] = label, label


def write_configs(variants: Sequence[Variant]) -> None:
    """Write each config the study builds itself where ``YOLO()`` will read it, unless it already holds that text."""
    for v in variants:
        if v.model is not None:
            write_config(v.model, Path(v.config), v.inserted, v.header)
