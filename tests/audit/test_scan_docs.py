"""Rule documentation: every rule has its parts, its examples behave, and the pages are generated."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from snapsafe.audit.scan import RULES, check_source
from snapsafe.audit.scan.docs import REQUIRED_PARTS, _parts, rule_docs

ROOT = Path(__file__).resolve().parents[2]


def code_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, re.S)


def test_codes_and_names_are_well_formed_and_unique() -> None:
    assert all(re.fullmatch(r"SNAP\d{3}", code) for code in RULES)
    names = [rule.name for rule in RULES.values()]
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[a-z]+(-[a-z]+)*", name) for name in names)


@pytest.mark.parametrize("code", list(RULES))
def test_docstring_has_the_headed_parts(code: str) -> None:
    parts = _parts(rule_docs(code).body)
    for part in REQUIRED_PARTS:
        assert parts.get(part), f"{code} lacks '## {part}'"


@pytest.mark.parametrize("code", list(RULES))
def test_example_is_flagged_and_use_instead_is_not(code: str) -> None:
    parts = _parts(rule_docs(code).body)
    for block in code_blocks(parts["Example"]):
        assert code in {f.code for f in check_source(block).findings}
    blocks = code_blocks(parts["Use instead"])
    assert blocks
    for block in blocks:
        result = check_source(block)
        assert result.findings == [] and result.errors == []


def test_generated_pages_are_up_to_date() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "snapsafe.audit.scan.docs", "--check", str(ROOT / "docs" / "rules")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"regenerate with: python -m snapsafe.audit.scan.docs docs/rules/\n{done.stderr}"


def test_usage_page_lists_every_rule() -> None:
    text = (ROOT / "docs" / "scan.md").read_text(encoding="utf-8")
    for code, rule in RULES.items():
        assert f"[{code}](rules/{code}.md)" in text and rule.name in text
