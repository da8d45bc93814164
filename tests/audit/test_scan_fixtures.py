"""The fixture files: findings match their ``# expect:`` comments and the recorded text output."""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import pytest

from snapsafe.audit.scan import RULES, ScanResult, check_source
from snapsafe.audit.scan.render import text

FIXTURES = Path(__file__).parent / "fixtures" / "scan"
EXPECTED = FIXTURES / "expected"
UPDATE = os.environ.get("SNAPSAFE_UPDATE_EXPECTED") == "1"
NAMES = sorted(p.name for p in FIXTURES.glob("*.py"))
_EXPECT = re.compile(r"#\s*expect:\s*(SNAP\d{3}(?:\s*,\s*SNAP\d{3})*)")


def expectations(source: str) -> Counter[tuple[int, str]]:
    found: Counter[tuple[int, str]] = Counter()
    for number, line in enumerate(source.splitlines(), 1):
        match = _EXPECT.search(line)
        if match:
            found.update((number, code.strip()) for code in match.group(1).split(","))
    return found


def scan_fixture(name: str) -> ScanResult:
    return check_source((FIXTURES / name).read_text(encoding="utf-8"), name)


@pytest.mark.parametrize("name", NAMES)
def test_findings_match_expect_comments(name: str) -> None:
    result = scan_fixture(name)
    got = Counter((f.line, f.code) for f in result.findings + result.errors)
    want = expectations((FIXTURES / name).read_text(encoding="utf-8"))
    assert sorted((want - got).elements()) == [], "expected findings missing"
    assert sorted((got - want).elements()) == [], "unexpected findings"


@pytest.mark.parametrize("name", NAMES)
def test_recorded_output(name: str) -> None:
    rendered = text.render(scan_fixture(name))
    recording = EXPECTED / (name.removesuffix(".py") + ".txt")
    if UPDATE:
        EXPECTED.mkdir(exist_ok=True)
        recording.write_text(rendered, encoding="utf-8")
    assert recording.exists(), f"no recording; run SNAPSAFE_UPDATE_EXPECTED=1 pytest {__file__}"
    assert rendered == recording.read_text(encoding="utf-8")


@pytest.mark.parametrize("code", list(RULES))
def test_every_rule_has_five_positives_and_five_negatives(code: str) -> None:
    bad = (FIXTURES / f"{code}_bad.py").read_text(encoding="utf-8")
    positives = [c for (_, c) in expectations(bad).elements() if c == code]
    assert len(positives) >= 5
    assert {f.code for f in scan_fixture(f"{code}_bad.py").findings} == {code}

    ok = (FIXTURES / f"{code}_ok.py").read_text(encoding="utf-8")
    negatives = re.findall(r"#.*\bok: ", ok)
    assert len(negatives) >= 5
    assert scan_fixture(f"{code}_ok.py").findings == []
