"""README.zh-CN.md stays in step with README.md: the same code blocks in the same order, the same named-placement
names and examples, working relative links, a link to each other at the top, and the usual Chinese terms."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.compat

ROOT = Path(__file__).resolve().parents[2]
ENGLISH, CHINESE = "README.md", "README.zh-CN.md"
TOP_LINES = 5  # each README links the other within its first lines

FENCED = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.M | re.S)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def readme(name: str) -> str:
    """The text of one README of the checkout (skips where the READMEs are not beside the tests, as in an sdist)."""
    if not (ROOT / ENGLISH).is_file():
        pytest.skip(f"no {ENGLISH} beside the tests in {ROOT}")
    assert (ROOT / CHINESE).is_file(), f"{ENGLISH} links {CHINESE}, which is missing from {ROOT}"
    return (ROOT / name).read_text(encoding="utf-8")


def code_blocks(text: str) -> list[tuple[str, str]]:
    """The fenced code blocks, in order, as (language tag, body)."""
    return FENCED.findall(text)


def placement_rows(text: str) -> list[tuple[str, str]]:
    """(name, example) of each table row whose first cell is a backticked name: the named-placement table."""
    rows = []
    for line in text.splitlines():
        if line.startswith("| `"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            rows.append((cells[0], cells[-1]))
    return rows


def relative_links(text: str) -> list[str]:
    """The targets of the Markdown links outside code blocks that point into the checkout, without their anchors."""
    prose = FENCED.sub("", text)
    targets = (t.split("#", 1)[0] for t in LINK.findall(prose) if "://" not in t and not t.startswith(("#", "mailto:")))
    return [t for t in targets if t]


def test_both_readmes_show_the_same_code_blocks_in_the_same_order():
    english = code_blocks(readme(ENGLISH))
    assert english, f"no fenced code block found in {ENGLISH}"
    chinese = code_blocks(readme(CHINESE))
    assert chinese == english, (
        f"{CHINESE}'s code blocks differ from {ENGLISH}'s: copy them byte for byte, in the same order "
        f"({len(chinese)} vs {len(english)} blocks)"
    )


def test_each_readme_links_the_other_at_its_top():
    for name, other in ((ENGLISH, CHINESE), (CHINESE, ENGLISH)):
        top = "\n".join(readme(name).splitlines()[:TOP_LINES])
        assert other in LINK.findall(top), f"{name} does not link {other} in its first {TOP_LINES} lines"


def test_the_placement_table_names_and_examples_match():
    english = placement_rows(readme(ENGLISH))
    assert english, f"no named-placement table found in {ENGLISH}"
    assert placement_rows(readme(CHINESE)) == english, (
        f"{CHINESE}'s placement table names or examples differ from {ENGLISH}'s"
    )


def test_every_relative_link_of_the_chinese_readme_exists_and_matches_the_english_ones():
    chinese = relative_links(readme(CHINESE))
    if not (ROOT / "docs").is_dir():
        pytest.skip(f"no docs/ beside the tests in {ROOT}")
    missing = [t for t in chinese if not (ROOT / t).exists()]
    assert not missing, f"{CHINESE} links files the checkout does not have: {missing}"
    english = relative_links(readme(ENGLISH))
    assert set(chinese) == set(english), (
        f"{CHINESE} and {ENGLISH} link different files of the checkout"
    )


@pytest.mark.parametrize("term", ["三重注意力", "即插即用", "YAML 配置"])
def test_the_chinese_readme_uses_the_terms_chinese_yolo_tutorials_use(term):
    assert term in readme(CHINESE), f"{CHINESE} never says {term}"
