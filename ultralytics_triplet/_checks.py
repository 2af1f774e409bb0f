"""Argument checks every public function shares. Each error names the parameter as the Python caller wrote it.

The message of every error raised here starts with the parameter's name, and the exception carries its parts: the
parameter as ``param``, the rest as ``detail`` and what to do about it as ``remedy`` (a :class:`Remedy`, worded for
each caller). So the command line says ``--out`` where a Python caller reads ``out``, and ``pass --force`` where it
reads ``pass force=True`` (see ``cli.py``), without reading the message's text.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import Any

CHECKPOINT_SUFFIX = ".pt"
YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Remedy:
    """What a caller can do about an error, in its own words.

    Attributes:
        python (str): As a Python caller reads it (``pass force=True to overwrite it``).
        command (str): As a user of the command line reads it (``pass --force to overwrite it``).
    """

    python: str
    command: str


OVERWRITE = Remedy("pass force=True to overwrite it", "pass --force to overwrite it")


def fail(kind: type[Exception], param: str | None, text: str, remedy: Remedy | None = None) -> Exception:
    """Return ``kind(f"{param} {text}; {remedy.python}")`` for the caller to raise, its parts set as ``param``,
    ``detail`` (``text``) and ``remedy``.

    Args:
        kind (type[Exception]): The exception class.
        param (str | None): The parameter the error is about, first in the message; None for none.
        text (str): What is wrong.
        remedy (Remedy | None): What to do about it, after a semicolon.
    """
    error = kind("; ".join(t for t in (f"{param} {text}" if param else text, remedy and remedy.python) if t))
    error.param, error.detail, error.remedy = param, text, remedy
    return error


def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer and not a bool."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def check_int(param: str, value: Any, low: int = 1, multiple_of: int | None = None) -> int:
    """Return ``value`` as an int if it is an integer >= ``low`` (and a multiple of ``multiple_of``, a stride).

    Raises:
        ValueError: Otherwise, naming ``param``, e.g. ``epochs must be an integer >= 1, got 0``.
    """
    if not is_int(value) or value < low:
        raise fail(ValueError, param, f"must be an integer >= {low}, got {value!r}")
    if multiple_of and value % multiple_of:
        raise fail(ValueError, param, f"must be a multiple of {multiple_of} (the models' largest stride), "
                   f"got {value!r}")
    return int(value)


def check_checkpoint(param: str, path: str | Path) -> Path:
    """Return ``path`` if it is a local ``.pt`` file; nothing is ever looked up online.

    Raises:
        ValueError: If the suffix is not ``.pt``.
        FileNotFoundError: If it is not a file.
    """
    path = Path(path)
    if path.suffix.lower() != CHECKPOINT_SUFFIX:
        raise fail(ValueError, param, f"'{path}' must be a {CHECKPOINT_SUFFIX} checkpoint")
    if not path.is_file():
        raise fail(FileNotFoundError, param, f"'{path}' not found (or not a file)")
    return path


def check_free_dir(param: str, path: str | Path, unless: str | None = None) -> Path:
    """Return ``path`` if it is absent or an empty directory (or a directory holding the file ``unless``).

    Raises:
        FileExistsError: If it is a file, or a directory with other contents.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise fail(FileExistsError, param, f"'{path}' is a file, not a directory")
    if path.is_dir() and any(path.iterdir()) and not (unless and (path / unless).is_file()):
        held = f" and holds no {unless}" if unless else ""
        raise fail(FileExistsError, param, f"'{path}' is not empty{held}; choose a new directory")
    return path


def check_model_lists(d: Any, what: str) -> dict:
    """Return ``d`` if it is a model dict: ``backbone`` and ``head`` lists of rows.

    Raises:
        ValueError: Otherwise, naming ``what`` (``'yolov8n.yaml'``, ``the model dict``).
    """
    if not (isinstance(d, dict) and all(isinstance(d.get(key), list) for key in ("backbone", "head"))):
        raise ValueError(f"{what} is not a model: it needs a 'backbone' list and a 'head' list of "
                         "[from, number, module, args] rows")
    return d


def check_output_file(param: str, path: str | Path, suffixes: tuple[str, ...], force: bool = False) -> Path:
    """Return ``path`` if it can be written: a wanted suffix, not a directory, and absent unless ``force``.

    Raises:
        ValueError: If the suffix is not one of ``suffixes`` or ``path`` is a directory.
        FileExistsError: If the file exists and ``force`` is False.
    """
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise fail(ValueError, param, f"'{path}' must end in {' or '.join(suffixes)}")
    if path.is_dir():
        raise fail(ValueError, param, f"'{path}' is a directory")
    if path.exists() and not force:
        raise fail(FileExistsError, param, f"'{path}' already exists", OVERWRITE)
    return path
