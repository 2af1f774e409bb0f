"""Write the CLI reference page, docs/cli.md, from the argument parser: each command's ``--help``, verbatim.

    python scripts/cli_reference.py            # rewrite docs/cli.md
    python scripts/cli_reference.py --check    # exit 1 if docs/cli.md differs from what the parser prints

Help text is rendered at 120 columns (``COLUMNS=120``), as ``ultralytics-triplet COMMAND --help`` prints it there.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

PAGE = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
WIDTH = "120"


def helps() -> dict[str, str]:
    """``--help`` of the top-level command and of each subcommand, in the parser's order."""
    os.environ["COLUMNS"] = WIDTH  # argparse reads the width from here
    from ultralytics_triplet.cli import build_parser

    parser = build_parser()
    out = {"": parser.format_help()}
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        out[name] = p.format_help()
    return out


def page() -> str:
    """The markdown page."""
    lines = [
        "# CLI reference",
        "",
        "Every command of `ultralytics-triplet`, as its `--help` prints it (generated from the argument parser by",
        "`python scripts/cli_reference.py`; a test fails when this page and `--help` differ).",
        "",
        "Usage errors print one `ultralytics-triplet: error: ...` line and exit with status 2, writing nothing.",
        "An existing output is never overwritten without `--force`. Nothing is downloaded: checkpoints must be",
        "local files.",
    ]
    for name, text in helps().items():
        lines += ["", f"## `ultralytics-triplet{' ' + name if name else ''}`", "", "```text", text.rstrip(), "```"]
    return "\n".join(lines) + "\n"


def main() -> int:
    """Write the page, or with ``--check`` compare it."""
    text = page()
    if "--check" in sys.argv[1:]:
        if PAGE.read_text(encoding="utf-8") != text:
            print(f"{PAGE} differs from the parser's --help: run python scripts/cli_reference.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text, encoding="utf-8")
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
