"""Named TripletAttention placements for every YOLO model config, generated from ultralytics' own YAML when asked for.

Wherever ``NAME.yaml`` resolves (an ultralytics stock config, a plugin's config directory, a file ultralytics finds
by name), three names resolve too, scale letter included, exactly as ``NAME`` does:

- ``NAME-triplet.yaml``: one TripletAttention right before the backbone's final pooling block (SPPF, SPP, SPPELAN),
  or at the backbone's end where it has none;
- ``NAME-triplet-neck.yaml``: one TripletAttention on each input of the head (the last row);
- ``NAME-triplet-dense.yaml``: one after every backbone and neck block of the CSP/ELAN/residual kind (C3, C2f, C3k2,
  A2C2f, RepNCSPELAN4, ELAN1, C3Ghost, Bottleneck, ResNetLayer, ...); in a model without such blocks, after every
  repeated row (YOLOv6's stacks), else after every convolution row (YOLOv3-tiny).

Each file is :func:`~ultralytics_triplet.surgery.insert_layers` applied to the source config and written by
:func:`~ultralytics_triplet.surgery.write_config` into :func:`cache_dir` (atomically: a temporary file renamed into
place, so parallel processes such as DDP workers never read half a file). It is regenerated on every first request in
a process and rewritten only when its text changed, so a family that a later ultralytics release adds works without
a new release of this package. Names of models that ultralytics builds with another model class than YOLO
(``rtdetr``, ``-world``, ``yoloe``, ``fastsam``, ``sam_``) get no placement.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path

from ._compat import OTHER_MODEL_CLASSES, ultralytics_version, user_config_dir
from ._version import __version__
from .surgery import TRIPLET_CITATION, insert_layers_with_rows, load_model_dict, model_rows, write_config

__all__ = ("NAMES", "PLACEMENTS", "cache_dir", "insertion_points", "parse_name", "resolve")

# The one list of named placements: name suffix -> where it puts TripletAttention.
PLACEMENTS = {
    "": "before the backbone's final pooling block (SPPF/SPP/SPPELAN), or at the backbone's end",
    "-neck": "on each input of the head",
    "-dense": "after every backbone and neck block of the C3/C2f/C3k2/ELAN kind",
}
NAMES = tuple(f"triplet{suffix}" for suffix in PLACEMENTS)  # ("triplet", "triplet-neck", "triplet-dense")
_NAME = re.compile(r"^(?P<stem>.+)-triplet(?P<placement>-neck|-dense)?(?P<suffix>\.ya?ml)$")
_BLOCK = re.compile(r"C[123]|ELAN|Bottleneck|ResNetLayer|HGBlock")  # CSP / ELAN / residual feature blocks
_lock = threading.Lock()
_made: dict[tuple[str, str], Path] = {}  # (requested name, source path) -> generated file, this process


def parse_name(name: str) -> tuple[str, str] | None:
    """Split a placement name into the source config's name and the placement.

    Args:
        name (str): A bare YAML file name, e.g. ``"yolov8-seg-triplet-neck.yaml"``.

    Returns:
        (tuple[str, str] | None): ``("yolov8-seg.yaml", "-neck")``, or None when ``name`` names no placement.
    """
    m = _NAME.match(name)
    return (m["stem"] + m["suffix"], m["placement"] or "") if m else None


def _module(row: list) -> str:
    """The module name of a YAML row without its namespace (``nn.Upsample`` -> ``Upsample``)."""
    return str(row[2]).rsplit(".", 1)[-1]


def _absolute(f: int, i: int) -> int:
    """Row ``i``'s ``from`` index ``f`` as an absolute layer index."""
    return f if f >= 0 else i + f


def insertion_points(d: dict, placement: str) -> list[int]:
    """Return the layers after which ``placement`` inserts TripletAttention (backbone and head rows counted together).

    Args:
        d (dict): A model dict as ``yaml_model_load`` returns it.
        placement (str): ``""``, ``"-neck"`` or ``"-dense"`` (a key of :data:`PLACEMENTS`).

    Returns:
        (list[int]): Sorted, distinct layer indices for ``insert_layers(after=...)``.

    Raises:
        ValueError: If ``placement`` is unknown.
    """
    backbone, rows = d["backbone"], model_rows(d)
    if placement == "":
        pools = [i for i, row in enumerate(backbone) if _module(row).startswith("SPP")]
        if not pools:
            return [len(backbone) - 1]
        f = backbone[pools[-1]][0]
        return [_absolute(f, pools[-1]) if isinstance(f, int) else pools[-1] - 1]
    if placement == "-neck":
        f = rows[-1][0]
        return sorted({_absolute(x, len(rows) - 1) for x in (f if isinstance(f, list) else [f])})
    if placement == "-dense":
        body = list(enumerate(rows[:-1]))
        for keep in (
            lambda row: _BLOCK.search(_module(row)) and not _module(row).startswith("SPP"),
            lambda row: row[1] != 1,  # repeated rows: YOLOv6's RepVGG-style stacks
            lambda row: _module(row).endswith("Conv") or _module(row) == "TorchVision",
        ):
            points = [i for i, row in body if keep(row)]
            if points:
                return points
        return [len(backbone) - 1]
    raise ValueError(f"unknown placement {placement!r}; expected one of {', '.join(map(repr, PLACEMENTS))}")


def cache_dir() -> Path:
    """Return where generated configs live: ``USER_CONFIG_DIR/ultralytics-triplet/<ours>/ultralytics-<theirs>``.

    ``USER_CONFIG_DIR`` is ultralytics' settings directory (``YOLO_CONFIG_DIR`` moves it). One folder per pair of
    versions, so processes of different installs never rewrite each other's files.
    """
    return user_config_dir() / "ultralytics-triplet" / __version__ / f"ultralytics-{ultralytics_version()}"


def resolve(name: str, lookup: Callable[[str], str | Path | None]) -> Path | None:
    """Return the generated placement config ``name``, or None when ``name`` is no placement of a config found.

    Args:
        name (str): A bare YAML file name such as ``"yolo11-seg-triplet-dense.yaml"``. Scaled names
            (``yolo11n-…``) resolve like stock ones: ultralytics retries the name without the scale letter.
        lookup (Callable): Finds a source config by bare name (ultralytics' own search, then plugin directories),
            returning its path or None; it must not generate placements itself.

    Returns:
        (Path | None): The generated file, up to date with the source config and this package.

    Raises:
        ValueError: If the source config exists but is built by another ultralytics model class than YOLO, or
            cannot take the placement.
    """
    parsed = parse_name(name)
    if parsed is None:
        return None
    stock, placement = parsed
    source = lookup(stock)
    if not source:
        return None
    source = Path(source)
    other = next((s for s in OTHER_MODEL_CLASSES if s in stock.lower()), None)
    if other:
        raise ValueError(
            f"'{name}': ultralytics builds '{stock}' with another model class than YOLO (the name contains "
            f"'{other}'), and ultralytics-triplet generates placements only for YOLO models; build a variant with "
            "ultralytics_triplet.insert_layers and save it with write_yaml under a name without it"
        )
    with _lock:
        made = _made.get((name, str(source)))
        if made is None or not made.is_file():
            made = _made[(name, str(source))] = _generate(name, source, placement)
        return made


def _generate(name: str, source: Path, placement: str) -> Path:
    """Write the placement of ``source`` as ``cache_dir() / name`` unless an identical file is there; return it."""
    d = load_model_dict(source)
    points = insertion_points(d, placement)
    where = PLACEMENTS[placement]
    if placement == "":
        pools = [_module(row) for row in d["backbone"] if _module(row).startswith("SPP")]
        where = f"before {pools[-1]}" if pools else "at the backbone's end"
    d, rows = insert_layers_with_rows(d, after=points)
    d.pop("scale", None)  # taken from the requested name when the file is loaded, never from the file
    return write_config(d, cache_dir() / name, rows, _header(name, source, where, points))


def _header(name: str, source: Path, where: str, points: list[int]) -> str:
    """The comment block on top of a generated config."""
    stem = name.rsplit("-triplet", 1)[0]
    return (
        f"{name}: {stem} with TripletAttention {where}.\n"
        f"{TRIPLET_CITATION}\n"
        f"Generated by ultralytics-triplet {__version__} with insert_layers(after={points}) + write_yaml from\n"
        f"{source} (ultralytics {ultralytics_version()}, AGPL-3.0).\n"
        "Nothing else differs: the parameter count is the source model's plus 300 per TripletAttention row; rows\n"
        'marked "# inserted by ultralytics-triplet" are new and later indices are re-wired. This file is rewritten\n'
        "when asked for by name: copy it elsewhere (keep the scale letter in the new name) before editing it.\n"
    )
