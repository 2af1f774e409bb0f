"""Carry pretrained weights into a model with inserted layers, through ultralytics' own ``BaseModel.load``.

ultralytics matches pretrained tensors by key (``model.<layer index>.…``), so one inserted row shifts, and drops,
every later layer. Here the two layer lists are aligned instead (an order-preserving match of layer types that
prefers pairs whose tensors fit), the source's layers are re-numbered to their partners' indices, and ultralytics'
own ``load`` copies them, keeping its special cases (a new class count, another input channel count).

A layer that receives nothing while its neighbours receive their weights (an inserted TripletAttention) is then
started as a pass-through (``init_pass_through``): the network computes almost exactly what the source computed,
instead of every inserted gate halving the features the next pretrained layer was trained on. Set
``ULTRALYTICS_TRIPLET_PASS_THROUGH=0`` (or ``pass_through=False``) to keep the paper's initialisation instead.

:func:`aligned_load` is what ``BaseModel.load`` runs (``integration.py`` wraps it), which every route shares:
``YOLO(cfg).load(pt)``, ``train(pretrained=pt)``, ``yolo train ... pretrained=pt`` and its DDP workers.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import _compat, _env
from ._text import PREFIX, one_line
from .loading import build_model, layer_list, load_checkpoint

__all__ = ("ENV_PASS_THROUGH", "MostlyUnusedError", "TransferReport", "aligned_load", "save_transferred",
           "transfer_weights")

ENV_PASS_THROUGH = _env.PASS_THROUGH
_MOSTLY_UNUSED = 0.5  # warn when more than this share of the source's tensors finds no place


def pass_through_enabled() -> bool:
    """Whether inserted layers start as pass-throughs (the default; ``ULTRALYTICS_TRIPLET_PASS_THROUGH=0`` opts out)."""
    return _env.flag(ENV_PASS_THROUGH, default=True)


class MostlyUnusedError(ValueError):
    """Most of a source's tensors find no place in the target: probably another family or scale."""


@dataclass
class TransferReport:
    """What a layer-aligned transfer copied.

    Attributes:
        transferred (int): Target tensors (parameters and buffers) that received a source tensor.
        skipped (int): Source tensors that went nowhere (unaligned layer, or no key/shape match in its layer).
        missing (int): Target tensors that received nothing and keep their initial values.
        empty_layers (list[int]): Target layer indices that hold tensors but received none (e.g. inserted layers).
        layer_pairs (list[tuple[int, int]]): Aligned (source, target) layer positions in the two layer lists.
        pass_through (list[int]): Empty target layers started as pass-throughs (see the module docstring).
        source_layers (int): Layers in the source's layer list.
    """

    transferred: int = 0
    skipped: int = 0
    missing: int = 0
    empty_layers: list[int] = field(default_factory=list)
    layer_pairs: list[tuple[int, int]] = field(default_factory=list)
    pass_through: list[int] = field(default_factory=list)
    source_layers: int = 0

    @property
    def unused_share(self) -> float:
        """Share of the source's tensors that found no place in the target."""
        total = self.transferred + self.skipped
        return self.skipped / total if total else 1.0

    def __str__(self) -> str:
        """Return a short human-readable summary."""
        total = self.transferred + self.missing
        empty = ", ".join(map(str, self.empty_layers)) or "none"
        started = f" (started as pass-throughs: {', '.join(map(str, self.pass_through))})" if self.pass_through else ""
        return (
            f"Transferred {self.transferred}/{total} target tensors from {len(self.layer_pairs)} aligned layers; "
            f"{self.missing} target tensors received none, {self.skipped} source tensors unused; "
            f"target layers without transferred weights: {empty}{started}"
        )


# --------------------------------------------------------------------------------------------------------------------
# alignment
# --------------------------------------------------------------------------------------------------------------------


def _layer_type(m: nn.Module) -> str:
    """Layer type name without its module path (``Conv`` for ``ultralytics.nn.modules.conv.Conv``)."""
    t = getattr(m, "type", None) or type(m).__name__
    return str(t).rsplit(".", 1)[-1]


def _layer_state(m: nn.Module) -> dict[str, torch.Tensor]:
    """A layer's persistent parameters and buffers by relative key."""
    return dict(m.state_dict(keep_vars=True))


def _fitting_keys(src: dict[str, torch.Tensor], tgt: dict[str, torch.Tensor]) -> list[str]:
    """Keys present in both layer states with equal shapes."""
    return [k for k, v in tgt.items() if k in src and src[k].shape == v.shape]


def align_layers(source: nn.Sequential, target: nn.Sequential) -> list[tuple[int, int]]:
    """Order-preserving alignment of two layer lists maximizing matched layers plus fitting tensors.

    A pair may be taken only when the types are equal and then scores 1 plus the number of its tensors that fit
    (same key and shape); the alignment with the highest total wins, so equal-typed layers whose tensors fit are
    preferred over ones that merely share a type. Classic dynamic programming, O(len(source) * len(target)).

    Returns:
        (list[tuple[int, int]]): Aligned (source, target) positions, increasing in both.
    """
    st, tt = [_layer_type(m) for m in source], [_layer_type(m) for m in target]
    src, tgt = [_layer_state(m) for m in source], [_layer_state(m) for m in target]
    n, m = len(st), len(tt)
    gain = [[1 + len(_fitting_keys(src[i], tgt[j])) if st[i] == tt[j] else 0 for j in range(m)] for i in range(n)]
    score = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            take = gain[i][j] + score[i + 1][j + 1] if gain[i][j] else 0
            score[i][j] = max(take, score[i + 1][j], score[i][j + 1])
    pairs, i, j = [], 0, 0
    while i < n and j < m:
        if gain[i][j] and score[i][j] == gain[i][j] + score[i + 1][j + 1]:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif score[i][j] == score[i + 1][j]:
            i += 1
        else:
            j += 1
    return pairs


def _report(pairs: list[tuple[int, int]], source: nn.Sequential, target: nn.Sequential) -> TransferReport:
    """Count what an alignment transfers (read from the current tensors, so after ultralytics rebuilt a head)."""
    src, tgt = [_layer_state(m) for m in source], [_layer_state(m) for m in target]
    received = [0] * len(tgt)
    for s, t in pairs:
        received[t] = len(_fitting_keys(src[s], tgt[t]))
    transferred = sum(received)
    return TransferReport(
        transferred=transferred,
        skipped=sum(map(len, src)) - transferred,
        missing=sum(map(len, tgt)) - transferred,
        empty_layers=[int(getattr(target[t], "i", t)) for t in range(len(tgt)) if tgt[t] and not received[t]],
        layer_pairs=list(pairs),
        source_layers=len(source),
    )


def _renumbered(source: nn.Module, layers: nn.Sequential, pairs: list[tuple[int, int]], n_target: int) -> nn.Module:
    """A stand-in for ``source`` whose layer list holds each aligned source layer at its partner's target index.

    The layers themselves are shared, not copied; target-only positions hold empty ``nn.Identity`` placeholders, so
    the state-dict keys are ``model.<target index>.…`` and ultralytics' key-matching load puts each tensor in place.
    """
    from ultralytics.nn.tasks import BaseModel

    slots: list[nn.Module] = [nn.Identity() for _ in range(n_target)]
    for s, t in pairs:
        slots[t] = layers[s]
    if isinstance(source, BaseModel):
        view = copy.copy(source)  # keeps names, yaml, is_fused() and the rest ultralytics' load reads
        view._modules = dict(source._modules)  # a copy of the child table, so the source's own list is untouched
    else:  # a bare layer list: give it the model shape ultralytics expects
        view = BaseModel.__new__(BaseModel)
        nn.Module.__init__(view)
    view.model = nn.Sequential(*slots)
    return view


def _is_identity(pairs: list[tuple[int, int]], n_source: int, n_target: int) -> bool:
    """Whether the alignment is layer i to layer i for every layer (then ultralytics' own load is exactly right)."""
    return n_source == n_target and pairs == [(i, i) for i in range(n_target)]


# --------------------------------------------------------------------------------------------------------------------
# pass-through initialisation
# --------------------------------------------------------------------------------------------------------------------


def _start_as_pass_through(target: nn.Sequential, report: TransferReport, enabled: bool) -> None:
    """Start each empty layer that can (``init_pass_through``) as a pass-through, when its neighbours got weights."""
    if not enabled or not report.transferred:
        return
    index = {int(getattr(m, "i", k)): m for k, m in enumerate(target)}
    for i in report.empty_layers:
        init = getattr(index[i], "init_pass_through", None)
        if callable(init):
            init()
            report.pass_through.append(i)


def _describe(report: TransferReport, target: nn.Sequential) -> str:
    """The note ultralytics' 'Transferred N/M items' line gets: what the alignment did."""
    index = {int(getattr(m, "i", k)): m for k, m in enumerate(target)}
    note = f"layer-aligned: {len(report.layer_pairs)}/{report.source_layers} source layers"
    names = {}
    for i in report.empty_layers:
        names.setdefault(type(index[i]).__name__, []).append(i)
    for name, rows in names.items():
        started = sum(i in report.pass_through for i in rows)
        s = "s" * (len(rows) > 1)
        inserted = "inserted " if callable(getattr(index[rows[0]], "init_pass_through", None)) else ""
        note += f"; {len(rows)} {inserted}{name} layer{s} ({', '.join(map(str, rows))})"
        if started == len(rows):
            note += " initialised to preserve the pretrained function"
        elif started:
            note += f", {started} initialised to preserve the pretrained function"
        else:
            kept = "received no weights and kept" if not inserted else "kept"
            note += f" {kept} {'their' if s else 'its'} initial values"
    return note


@contextlib.contextmanager
def _noted_transfer_line(note: str, verbose: bool):
    """Append ``(note)`` to the 'Transferred N/M items' line ultralytics' load logs; log the note alone otherwise."""
    from ultralytics.utils import LOGGER

    seen = []

    def add_note(record: logging.LogRecord) -> bool:
        if not seen and isinstance(record.msg, str) and record.msg.startswith(_compat.TRANSFERRED):
            record.msg = f"{record.msg} ({note})"
            seen.append(record)
        return True

    LOGGER.addFilter(add_note)
    try:
        yield
    finally:
        LOGGER.removeFilter(add_note)
    if verbose and not seen:
        LOGGER.info(f"{PREFIX} {note}")


def _warn_if_mostly_unused(report: TransferReport, what: str) -> None:
    """Warn when most of the source's tensors found no place: probably another family or scale."""
    if report.unused_share > _MOSTLY_UNUSED:
        from ultralytics.utils import LOGGER

        LOGGER.warning(f"{PREFIX} {unused_message(report, what)}")


def unused_message(report: TransferReport, what: str) -> str:
    """One line saying how little of a source fitted (the CLI's refusal and the Python warning)."""
    return (
        f"only {len(report.layer_pairs)}/{report.source_layers} layers of {what} aligned and "
        f"{report.unused_share:.0%} of its tensors ({report.skipped}) found no place: is it the model this one was "
        "made from (same family and scale)?"
    )


# --------------------------------------------------------------------------------------------------------------------
# the one path: BaseModel.load, patched
# --------------------------------------------------------------------------------------------------------------------


def aligned_load(load, model: nn.Module, weights: Any, verbose: bool = True) -> TransferReport | None:
    """Run ultralytics' ``load`` with the source re-numbered to ``model``'s layers; return the report.

    This is what ``BaseModel.load`` does with this package installed (``integration.py`` wraps it). Inserted layers
    start as pass-throughs unless ``ULTRALYTICS_TRIPLET_PASS_THROUGH=0``.

    Returns None (and leaves everything to ``load`` as it is) when there is nothing to align: the source has no
    layer list, or its layers are the target's one for one.
    """
    pass_through = pass_through_enabled()
    source = _compat.checkpoint_model(weights) if isinstance(weights, dict) else weights
    try:
        src_layers, tgt_layers = layer_list(source, "source"), layer_list(model, "model")
    except ValueError:
        return None
    pairs = align_layers(src_layers, tgt_layers)
    if _is_identity(pairs, len(src_layers), len(tgt_layers)):
        return None
    report = _carry(lambda view: load(model, view, verbose=verbose), source, src_layers, tgt_layers, pairs,
                    pass_through, verbose)
    if verbose:
        _warn_if_mostly_unused(report, "the pretrained weights")
    return report


def _carry(copy_into, source: nn.Module, src_layers: nn.Sequential, tgt_layers: nn.Sequential,
           pairs: list[tuple[int, int]], pass_through: bool, verbose: bool) -> TransferReport:
    """Start the target's empty layers as pass-throughs, hand ``copy_into`` the re-numbered source, report.

    The note on ultralytics' 'Transferred' line is planned before the copy; the returned counts are read after it
    (a class branch ultralytics rebuilt at the source's width fits then).
    """
    plan = _report(pairs, src_layers, tgt_layers)
    _start_as_pass_through(tgt_layers, plan, pass_through)  # layers that get nothing from the source either way
    with _noted_transfer_line(_describe(plan, tgt_layers), verbose):
        copy_into(_renumbered(source, src_layers, pairs, len(tgt_layers)))
    report = _report(pairs, src_layers, tgt_layers)
    report.pass_through = plan.pass_through
    return report


# --------------------------------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------------------------------


def transfer_weights(
    model: nn.Module, source: str | Path | nn.Module, pass_through: bool | None = None
) -> TransferReport:
    """Copy every parameter and buffer of ``source`` into ``model`` by aligning their layer lists.

    The two layer lists are aligned in order, so layers only the target has, such as inserted attention rows, are
    skipped and each original layer meets its own weights although its ``model.N.`` prefix moved. For an ultralytics
    model this is exactly what ``model.load(source)`` does with this package installed, ultralytics' special cases
    included; inserted layers then start as pass-throughs (see the module docstring).

    Args:
        model (nn.Module): Target: an ultralytics model (``DetectionModel`` etc.) or any module whose ``.model`` is
            the ``nn.Sequential`` of layers.
        source (str | Path | nn.Module): A local ultralytics checkpoint (read by ultralytics' loader, so
            ``ULTRALYTICS_SAFE_LOAD=1`` holds), an ultralytics model, or its layer ``nn.Sequential``.
        pass_through (bool | None): Start inserted layers as pass-throughs; None reads
            ``ULTRALYTICS_TRIPLET_PASS_THROUGH`` (on unless set to 0).

    Returns:
        (TransferReport): Counts of transferred, skipped and missing tensors and the target layers left empty.

    Raises:
        FileNotFoundError: If ``source`` is a path that does not exist.
        ValueError: If ``source`` is not a readable checkpoint, either side has no layer list, or no tensor fits;
            the target is left untouched in that case.
    """
    from ultralytics.nn.tasks import BaseModel

    pass_through = pass_through_enabled() if pass_through is None else pass_through
    tgt_layers = layer_list(model, "model")
    src_model = load_checkpoint(source)[0] if isinstance(source, (str, Path)) else source
    src_layers = layer_list(src_model, "source")
    pairs = align_layers(src_layers, tgt_layers)
    if not _report(pairs, src_layers, tgt_layers).transferred:
        raise ValueError("no source tensor fits the target model: the two share no layer of the same type and shape")
    def copy_into(view: nn.Module) -> None:
        if isinstance(model, BaseModel):
            # ultralytics' own copy, with its head and channel cases
            _compat.original_load()(model, view, verbose=False)
            return
        state = model.state_dict()
        with torch.no_grad():
            for k, v in view.state_dict().items():
                if k in state and state[k].shape == v.shape:
                    state[k].copy_(v)

    report = _carry(copy_into, src_model, src_layers, tgt_layers, pairs, pass_through, verbose=False)
    if report.unused_share > _MOSTLY_UNUSED:
        import warnings

        warnings.warn(unused_message(report, "the source"), stacklevel=2)
    return report


def save_transferred(
    base: str | Path, cfg: str | Path, out: str | Path, pass_through: bool | None = None, strict: bool = False
) -> tuple[TransferReport, nn.Module]:
    """Build ``cfg`` with ``base``'s class count and names, carry ``base``'s weights into it, save with ``Model.save``.

    The checkpoint is ultralytics' own format (``Model.save``: a float16 model, date, version), with ``train_args``
    so ``yolo train model=OUT.pt`` trains from it, and a ``transfer`` entry recording what was carried.

    Args:
        base (str | Path): Local ultralytics checkpoint (read by ultralytics' loader).
        cfg (str | Path): Target model YAML name or path.
        out (str | Path): Destination ``.pt`` (written as given; callers check overwrites).
        pass_through (bool | None): As for :func:`transfer_weights`.
        strict (bool): Refuse (ValueError, nothing written) when most of ``base``'s tensors find no place, instead of
            warning.

    Returns:
        (tuple[TransferReport, nn.Module]): The report and the new model.
    """
    from ultralytics import YOLO
    from ultralytics.nn.tasks import guess_model_task

    source, ckpt = load_checkpoint(base)
    names = getattr(source, "names", None)
    nc = (getattr(source, "yaml", None) or {}).get("nc") or (len(names) if isinstance(names, (dict, list)) else None)
    model = build_model(cfg, nc=nc)
    try:
        report = transfer_weights(model, source, pass_through=pass_through)
    except ValueError as e:
        raise ValueError(f"cannot transfer {Path(base).name} into {cfg}: {one_line(e)}") from None
    if strict and report.unused_share > _MOSTLY_UNUSED:
        raise MostlyUnusedError(f"{unused_message(report, Path(base).name)} (strict=True: nothing written)")
    if isinstance(names, (list, tuple)):
        names = dict(enumerate(names))
    if isinstance(names, dict) and len(names) == model.yaml.get("nc"):
        model.names = {int(k): str(v) for k, v in names.items()}
    base_args = ckpt.get("train_args") or {}
    imgsz = base_args.get("imgsz")
    task = guess_model_task(model)
    train_args = {"task": task, "model": str(cfg), "imgsz": imgsz if isinstance(imgsz, int) else 640,
                  "single_cls": bool(base_args.get("single_cls", False))}
    model.args, model.task = dict(train_args), task
    wrapper = YOLO(str(cfg), task=task, verbose=False)
    wrapper.model = model.eval()
    wrapper.ckpt = {"epoch": -1, "best_fitness": None, "train_args": train_args, "transfer": {
        "base": str(base), "model": str(cfg), "transferred": report.transferred, "missing": report.missing,
        "skipped": report.skipped, "empty_layers": list(report.empty_layers), "pass_through": report.pass_through}}
    wrapper.save(out)
    return report, model
