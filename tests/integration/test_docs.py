"""Pages generated from the code say what the code does: the CLI reference page is what ``--help`` prints, command by
command (docs/cli.md, from the parser), and the module page's table of formulations is the code's (docs/module.md,
from ``ultralytics_triplet.formulation.FORMULATIONS``)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from helpers import cli, run

from ultralytics_triplet.formulation import FORMULATIONS

pytestmark = pytest.mark.compat

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "cli.md"


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


def test_the_module_page_shows_the_codes_table_of_formulations():
    script, page = ROOT / "scripts" / "formulation_table.py", ROOT / "docs" / "module.md"
    if not (script.is_file() and page.is_file()):
        pytest.skip(f"no {script} and {page} beside the tests")
    spec = importlib.util.spec_from_file_location("formulation_table", script)
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    text = page.read_text(encoding="utf-8")
    assert generator.table().count("\n| `") == len(FORMULATIONS)  # a row per formulation, read from the code
    assert generator.page(text) == text, "docs/module.md is stale: run python scripts/formulation_table.py"
