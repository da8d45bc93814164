"""``path:line:col: CODE message``, one line per finding, syntax errors in place (like flake8)."""

from __future__ import annotations

from ..engine import ScanResult


def render(result: ScanResult) -> str:
    findings = sorted(result.findings + result.errors)
    return "".join(f"{f.path}:{f.line}:{f.col}: {f.code} {f.message}\n" for f in findings)


def summary(result: ScanResult) -> str:
    """The closing line, for stderr."""
    count = len(result.findings)
    line = f"Found {count} finding{'' if count == 1 else 's'}"
    extra = []
    if result.suppressed:
        extra.append(f"{result.suppressed} silenced by noqa")
    if result.errors:
        files = len({e.path for e in result.errors})
        extra.append(f"{files} file{'' if files == 1 else 's'} could not be parsed")
    return line + (f" ({'; '.join(extra)})." if extra else ".")
