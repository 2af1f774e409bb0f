"""The study on disk: ``study.json`` (settings and fingerprint) and ``records/RUN.json`` (one per finished run).

Every file is written atomically (a temporary file renamed into place), so an interrupted study never leaves half a
record: a run is either recorded as finished or trained (or continued) again.
"""

from __future__ import annotations

import json
from pathlib import Path

from .._checks import fail
from .._files import atomic_write
from .._text import one_line
from .plan import STUDY_FILE, Plan
from .run import RunRecord

__all__ = ("Store",)

# how a changed setting is named in the 'different study' message
_SETTING_NAMES = {
    "data_sha256": "data", "data_files": "data", "nc": "data", "model_sha256": "model", "task": "model",
    "pretrained_sha256": "pretrained", "train_args": "hyper-parameters", "format": "study format",
}


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


class Store:
    """A study's folder: ``study.json``, ``records/`` and ``runs/`` (the ultralytics runs)."""

    def __init__(self, out: str | Path):
        """Point at the study folder ``out`` (nothing is read or written yet)."""
        self.out = Path(out)
        self.records = self.out / "records"
        self.runs = (self.out / "runs").resolve()

    def open(self, plan: Plan) -> None:
        """Write ``study.json`` for a new study, or check that the folder holds this same study.

        Raises:
            FileExistsError: If the folder holds a study with different settings (nothing is changed then).
            ValueError: If its ``study.json`` is unreadable.
        """
        path = self.out / STUDY_FILE
        if path.is_file():
            try:
                old = json.loads(path.read_text(encoding="utf-8"))
                old_settings = old["settings"]
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(f"'{path}' is not a readable study file: {one_line(e)}") from None
            if old.get("fingerprint") != plan.fingerprint:
                settings = plan.settings.to_json()
                changed = [_SETTING_NAMES.get(k, k) for k in settings if old_settings.get(k) != settings[k]]
                raise fail(FileExistsError, "out", f"'{self.out}' holds a different study (changed: "
                           f"{', '.join(dict.fromkeys(changed)) or 'settings'}); results of different settings are "
                           "never mixed: choose a new directory")
            return
        self.out.mkdir(parents=True, exist_ok=True)
        write_text(path, json.dumps({"fingerprint": plan.fingerprint, "settings": plan.settings.to_json()}, indent=2))

    def read(self, run: str) -> RunRecord | None:
        """The record of the finished run ``run``, or None (a half-written one cannot exist: writes are atomic)."""
        path = self.records / f"{run}.json"
        if not path.is_file():
            return None
        try:
            return RunRecord.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, TypeError, KeyError):
            return None

    def write(self, record: RunRecord) -> None:
        """Record a finished run, with its paths relative to the study folder."""
        write_text(self.records / f"{record.run}.json", json.dumps(record.to_json(), indent=2))
