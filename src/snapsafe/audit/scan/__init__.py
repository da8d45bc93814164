"""``snapsafe scan``: static checks for snapshot-uniqueness hazards in code that runs at init.

    from snapsafe.audit.scan import check_source, scan_paths

    result = scan_paths(["src/"], codes=["SNAP001", "SNAP005"])
    for finding in result.findings:
        print(finding.path, finding.line, finding.code, finding.message)

The rules and their codes are in :mod:`.codes`; what counts as init code is described in
:mod:`.initcode`; the output formats are in :mod:`.render`.
"""

from __future__ import annotations

from .codes import RULES, SYNTAX_ERROR, UnknownCodeError, select_codes
from .engine import ScanResult, check_source, scan_paths
from .model import Finding, InitExpr, Rule

__all__ = [
    "RULES",
    "SYNTAX_ERROR",
    "Finding",
    "InitExpr",
    "Rule",
    "ScanResult",
    "UnknownCodeError",
    "check_source",
    "scan_paths",
    "select_codes",
]
