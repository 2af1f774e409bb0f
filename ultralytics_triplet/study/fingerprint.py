"""What makes two studies the same study: hashes of the data (YAML content, file names and sizes) and of each model.

A study's settings and this fingerprint are stored in ``study.json``; a changed setting is a different study, refused
in the same output folder, so results of different settings are never mixed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ultralytics.data.utils import check_cls_dataset, check_det_dataset

from .._checks import YAML_SUFFIXES, fail
from .._text import one_line

__all__ = ("DataFingerprint", "check_data", "digest", "model_identity", "sha256_file")

_SKIP_IN_LISTING = (".cache", ".npy")  # files ultralytics itself writes next to a dataset (label caches, cache=disk)


def sha256_file(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def digest(obj: Any) -> str:
    """Short stable hash of a JSON-able object."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def model_identity(d: dict) -> dict:
    """The parts of a model dict that define the network (not where the file was found)."""
    return {k: v for k, v in d.items() if k not in ("yaml_file",)}


def _data_roots(info: dict) -> list[Path]:
    """Directories (and split list files) whose listing identifies a dataset: its root, and splits outside it."""
    root = Path(info.get("path") or ".")
    roots = [root] if root.exists() else []
    for k in ("train", "val", "test", "minival"):
        splits = info.get(k)
        for s in splits if isinstance(splits, (list, tuple)) else [splits] if splits else []:
            p = Path(str(s))
            if not p.exists() or any(p.resolve().is_relative_to(r.resolve()) for r in roots):
                continue
            roots.append(p)
            parts = p.parts
            if p.is_dir() and "images" in parts:  # the labels of an images/ folder live in the matching labels/
                i = len(parts) - 1 - parts[::-1].index("images")
                labels = Path(*parts[:i], "labels", *parts[i + 1:])
                if labels.exists():
                    roots.append(labels)
    return roots


def _listing(roots: list[Path], out: Path) -> tuple[str, int]:
    """Hash of every file's relative path and size under ``roots`` (skipping caches and the study's own folder)."""
    h, n = hashlib.sha256(), 0
    out = out.resolve()
    for r in roots:
        h.update(f"# {r.resolve()}\n".encode())
        files = [r] if r.is_file() else sorted(p for p in r.rglob("*") if p.is_file())
        for p in files:
            if p.suffix in _SKIP_IN_LISTING or p.resolve().is_relative_to(out):
                continue
            h.update(f"{p.relative_to(r) if p != r else p.name}\t{p.stat().st_size}\n".encode())
            n += 1
    return h.hexdigest(), n


@dataclass(frozen=True)
class DataFingerprint:
    """What identifies a dataset.

    Attributes:
        path (str): Its YAML (or classification folder), absolute.
        sha256 (str): Digest of the YAML's content and of every file's relative path and size.
        files (int): Files counted.
        nc (int): Number of classes.
    """

    path: str
    sha256: str
    files: int
    nc: int


def check_data(data: str | Path, task: str, out: Path) -> DataFingerprint:
    """Check the dataset with ultralytics' own checker; return its fingerprint (YAML content, files and sizes).

    Raises:
        FileNotFoundError: If the data YAML (or classification folder) does not exist.
        ValueError: If ultralytics rejects it.
    """
    path = Path(data)
    if not path.exists():
        raise fail(FileNotFoundError, "data", f"'{data}' not found")
    if task == "classify" and path.is_dir():
        check = check_cls_dataset
    elif path.suffix.lower() in YAML_SUFFIXES and path.is_file():
        check = check_det_dataset
    else:
        raise fail(ValueError, "data", f"'{data}' must be a dataset YAML file" + (" or folder" if task == "classify"
                                                                                    else ""))
    try:
        info = check(str(path))
    except Exception as e:
        raise fail(ValueError, "data", f"'{data}' is rejected by ultralytics: {one_line(e)}") from None
    if path.is_file():
        info = {**info, "path": info.get("path") or path.parent}
    listing, n = _listing(_data_roots(info) if path.is_file() else [path], out)
    content = path.read_bytes() if path.is_file() else b""
    return DataFingerprint(path=str(path.resolve()), sha256=hashlib.sha256(content + listing.encode()).hexdigest(),
                           files=n, nc=int(info.get("nc") or len(info.get("names") or [])))
