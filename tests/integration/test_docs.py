"""The CLI reference page says what ``--help`` prints, command by command (docs/cli.md is generated from the parser)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import cli, run

pytestmark = pytest.mark.compat

PAGE = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def documented() -> dict[str, str]:
    """Command -> the help text the page shows for it."""
    if not PAGE.is_file():
        pytest.skip(f"no {PAGE} beside the tests")
    blocks = re.findall(r"^## `ultralytics-triplet ?(\S*)`\n\n```text\n(.*?)\n```", PAGE.read_text(encoding="utf-8"),
                        re.M | re.S)
    return dict(blocks)


def test_the_cli_reference_page_is_what_help_prints(tmp_path):
    pages = documented()
    assert {"", "insert", "transfer", "compare", "visualize", "study", "plugins"} <= set(pages)
    for command, text in pages.items():
        p = run([*cli(), *([command] if command else []), "--help"], tmp_path, COLUMNS="120")
        assert p.returncode == 0, p.stderr
        assert p.stdout.rstrip() == text, f"docs/cli.md is stale for '{command}': run python scripts/cli_reference.py"
