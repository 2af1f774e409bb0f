"""Text every message of this package shares: the prefix, exceptions on one line, durations, fixed-width tables."""

from __future__ import annotations

from collections.abc import Sequence

PROG = "ultralytics-triplet"
PREFIX = f"{PROG}:"  # starts every line this package logs


def one_line(e: BaseException) -> str:
    """Return an exception's message as one line (its type name when it has none; KeyError without quotes)."""
    text = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    return " ".join(text.split()) or type(e).__name__


def table(rows: Sequence[Sequence[str]]) -> str:
    """Render rows of cells as a fixed-width text table: the first row is the header, the first column left-aligned.

    Examples:
        >>> print(table([("", "A", "B"), ("parameters", "1", "22")]))
                    A   B
        ----------  -  --
        parameters  1  22
    """
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for k, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def duration(seconds: float) -> str:
    """``42 s``, ``3m05s`` or ``1h02m``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}m{s:02d}s" if m < 60 else f"{m // 60}h{m % 60:02d}m"
