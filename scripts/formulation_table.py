"""Write the table of TripletAttention's formulations on docs/module.md from the code's ``FORMULATIONS``.

    python scripts/formulation_table.py            # rewrite the table in docs/module.md
    python scripts/formulation_table.py --check    # exit 1 if the page's table differs from the code's

The table stands between two marker lines of the page; everything else on the page is left as it is. The package must
come from this checkout (``PYTHONPATH=.`` where another copy is installed).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "module.md"
BEGIN = "<!-- generated from ultralytics_triplet.formulation.FORMULATIONS by scripts/formulation_table.py -->"
END = "<!-- end of the generated formulations -->"


def table() -> str:
    """The markdown table: one row per formulation, in the code's order."""
    from ultralytics_triplet import formulation

    rows = ["| formulation | runs | how it computes |", "| --- | --- | --- |"]
    rows += [f"| `{f.name}` | {f.runs} | {f.computes} |" for f in formulation.FORMULATIONS]
    return "\n".join(rows)


def page(text: str) -> str:
    """``text`` (the page) with the table between its markers replaced by :func:`table`."""
    head, begin, rest = text.partition(BEGIN + "\n")
    _, end, tail = rest.partition(END)
    if not (begin and end):
        raise SystemExit(f"{PAGE} lacks the marker lines {BEGIN!r} and {END!r}")
    return f"{head}{BEGIN}\n{table()}\n{END}{tail}"


def main() -> int:
    """Write the page, or with ``--check`` compare it."""
    sys.path.insert(0, str(ROOT))
    from ultralytics_triplet import formulation

    if ROOT not in Path(formulation.__file__).resolve().parents:  # the tests import the installed wheel instead
        raise SystemExit(f"ultralytics_triplet comes from {formulation.__file__}, not this checkout: run with "
                         f"PYTHONPATH={ROOT}")
    text = PAGE.read_text(encoding="utf-8")
    if "--check" in sys.argv[1:]:
        if page(text) != text:
            print(f"{PAGE}: the formulation table differs from the code's: run python scripts/formulation_table.py",
                  file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(page(text), encoding="utf-8")
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
