"""One way to make a figure: matplotlib's object API (no pyplot), so the caller's backend and figures stay as they
are."""

from __future__ import annotations

import contextlib
from pathlib import Path


@contextlib.contextmanager
def figure(path: str | Path, figsize: tuple[float, float], dpi: int = 110):
    """Yield a new ``matplotlib.figure.Figure``; on leaving the block lay it out and save it to ``path``.

    The format follows ``path``'s suffix; parent folders are created. Nothing is written if the block raises.

    Examples:
        >>> with figure("chart.png", (6, 4)) as fig:
        ...     fig.subplots().plot([0, 1], [1, 0])
    """
    from matplotlib.figure import Figure

    path = Path(path)
    fig = Figure(figsize=figsize)
    yield fig
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
