"""Writing a file so that a reader never sees half of it: write beside it, then move it into place."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Callable


def atomic_write(path: Path, write: Callable[[Path], Any]) -> Any:
    """Call ``write(tmp)`` for a temporary file beside ``path``; move it into place only if that succeeded.

    Returns:
        (Any): What ``write`` returned. Nothing is left behind when it raises.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp{path.suffix}")
    try:
        result = write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return result
