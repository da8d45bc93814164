"""SARIF 2.1.0, the format code-scanning services read (GitHub, GitLab, Azure DevOps).

One run; the driver lists every rule with its documentation, so a viewer can show why and how to
fix. Syntax errors are results of the pseudo-rule SNAP000 at level ``error``; skipped files are
tool notifications of the invocation.
"""

from __future__ import annotations

import json
import os
from pathlib import PurePath
from urllib.parse import quote

from snapsafe import __version__

from ..codes import RULES, SYNTAX_ERROR, SYNTAX_ERROR_NAME
from ..docs import rule_docs
from ..engine import ScanResult
from ..model import Finding

SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"


def _descriptors() -> list[dict[str, object]]:
    rules: list[dict[str, object]] = [
        {
            "id": SYNTAX_ERROR,
            "name": SYNTAX_ERROR_NAME,
            "shortDescription": {"text": "the file does not parse; it was not checked"},
            "defaultConfiguration": {"level": "error"},
        }
    ]
    for code, rule in RULES.items():
        doc = rule_docs(code)
        rules.append(
            {
                "id": code,
                "name": rule.name,
                "shortDescription": {"text": rule.summary},
                "fullDescription": {"text": doc.what},
                "help": {"text": rule.fix, "markdown": doc.body},
                "defaultConfiguration": {"level": "warning"},
            }
        )
    return rules


def _uri(path: str) -> str:
    if os.path.isabs(path):
        return PurePath(path).as_uri()
    return quote(PurePath(path).as_posix())


def _result(f: Finding, index: dict[str, int]) -> dict[str, object]:
    result: dict[str, object] = {
        "ruleId": f.code,
        "ruleIndex": index[f.code],
        "level": "error" if f.code == SYNTAX_ERROR else "warning",
        "message": {"text": f.message},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": _uri(f.path)},
                    "region": {
                        "startLine": f.line,
                        "startColumn": f.col,
                        "endLine": max(f.end_line, f.line),
                        "endColumn": max(f.end_col, 1),
                    },
                }
            }
        ],
    }
    if f.fix:
        result["properties"] = {"fix": f.fix, "rule": f.rule}
    return result


def render(result: ScanResult) -> str:
    descriptors = _descriptors()
    index = {str(d["id"]): i for i, d in enumerate(descriptors)}
    notes = [
        {"level": "note", "message": {"text": f"skipped {s.path}: {s.reason}"}} for s in result.skipped
    ]
    log = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "snapsafe", "version": __version__, "rules": descriptors}},
                "invocations": [
                    {"executionSuccessful": not result.errors, "toolExecutionNotifications": notes}
                ],
                "results": [_result(f, index) for f in sorted(result.findings + result.errors)],
            }
        ],
    }
    return json.dumps(log, indent=2) + "\n"
