"""A JSON array of findings, syntax errors included (code SNAP000), sorted by path and position."""

from __future__ import annotations

import json

from ..engine import ScanResult
from ..model import Finding


def as_dict(f: Finding) -> dict[str, object]:
    return {
        "path": f.path,
        "line": f.line,
        "col": f.col,
        "end_line": f.end_line,
        "end_col": f.end_col,
        "code": f.code,
        "rule": f.rule,
        "message": f.message,
        "fix": f.fix,
    }


def render(result: ScanResult) -> str:
    return json.dumps([as_dict(f) for f in sorted(result.findings + result.errors)], indent=2) + "\n"
