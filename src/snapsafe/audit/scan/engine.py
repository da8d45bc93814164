"""From sources to findings: parse, walk the init code, run the selected rules, apply ``# noqa``."""

from __future__ import annotations

import ast
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from . import noqa
from .codes import RULES, SYNTAX_ERROR, SYNTAX_ERROR_NAME
from .files import Skipped, python_files, read_source
from .initcode import init_exprs
from .model import Finding, InitExpr

T = TypeVar("T")
_DEEP_RECURSION = 100_000
_DEEP_STACK_BYTES = 512 * 1024 * 1024  # reserved address space, touched only as deep as needed


@dataclass
class ScanResult:
    """What a scan found. ``errors`` are SNAP000 findings for files that did not parse."""

    findings: list[Finding] = field(default_factory=list)
    errors: list[Finding] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    suppressed: int = 0
    files: int = 0


def check_source(source: str, path: str = "<string>", codes: Iterable[str] | None = None) -> ScanResult:
    """Scan one module's text. ``codes`` defaults to every rule."""
    result = ScanResult(files=1)

    def analyse() -> list[InitExpr]:
        return init_exprs(ast.parse(source, filename=path))

    try:
        try:
            exprs = analyse()
        except RecursionError:  # generated code: a 5000-term sum, a 2000-branch elif
            exprs = _with_deep_stack(analyse)
    except SyntaxError as err:
        result.errors.append(_syntax_error(path, err))
        return result
    except (ValueError, RecursionError, MemoryError) as err:  # null bytes, absurd nesting
        result.errors.append(_syntax_error(path, SyntaxError(f"cannot analyse: {err or type(err).__name__}")))
        return result
    rules = [(code, RULES[code]()) for code in (RULES if codes is None else codes)]
    directives = noqa.directives(source)
    lines = source.splitlines()
    seen: set[tuple[int, str]] = set()  # one finding per node and code
    for expr in exprs:
        for code, rule in rules:
            if expr.repaired and rule.repairable:
                continue
            message = rule.check(expr)
            if message is None or (id(expr.node), code) in seen:
                continue
            seen.add((id(expr.node), code))
            node = expr.node
            end_line = node.end_lineno or node.lineno
            if noqa.silenced(directives, code, (node.lineno, end_line)):
                result.suppressed += 1
                continue
            result.findings.append(
                Finding(
                    path=path,
                    line=node.lineno,
                    col=_column(lines, node.lineno, node.col_offset),
                    code=code,
                    message=message + _context(expr),
                    rule=rule.name,
                    fix=rule.fix,
                    end_line=end_line,
                    end_col=_column(lines, end_line, node.end_col_offset or node.col_offset),
                )
            )
    result.findings.sort()
    return result


def scan_paths(paths: list[str], codes: Iterable[str] | None = None) -> ScanResult:
    """Scan files and directories (walked for ``*.py``). Paths must exist (the caller checks)."""
    codes = list(RULES if codes is None else codes)
    total = ScanResult()
    for path in python_files(paths):
        source = read_source(path)
        if isinstance(source, Skipped):
            total.skipped.append(source)
            continue
        one = check_source(source, path, codes)
        total.findings += one.findings
        total.errors += one.errors
        total.suppressed += one.suppressed
        total.files += 1
    return total


def _with_deep_stack(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a thread with a big stack and a high recursion limit, for deeply nested code.

    ``ast.parse`` and the walk recurse once per nesting level; the default limit (1000) is far
    below what CPython itself compiles. The limit is process-wide, so it is restored at once.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as err:  # re-raised in the caller's thread
            box["error"] = err

    old_limit, old_size = sys.getrecursionlimit(), threading.stack_size()
    try:
        threading.stack_size(_DEEP_STACK_BYTES)
        sys.setrecursionlimit(max(old_limit, _DEEP_RECURSION))
        worker = threading.Thread(target=target, name="snapsafe-scan-deep")
        worker.start()
        worker.join()
    finally:
        threading.stack_size(old_size)
        sys.setrecursionlimit(old_limit)
    if "error" in box:
        raise box["error"]
    return box["value"]


def _context(expr: InitExpr) -> str:
    if expr.via:
        return f" (in `{expr.via}`, called at init)"
    return " (a default argument)" if expr.where == "default" else ""


def _column(lines: list[str], line: int, byte_offset: int) -> int:
    """ast gives UTF-8 byte offsets; editors and SARIF count characters. 1-based."""
    if not 1 <= line <= len(lines):
        return byte_offset + 1
    return len(lines[line - 1].encode("utf-8")[:byte_offset].decode("utf-8", "replace")) + 1


def _syntax_error(path: str, err: SyntaxError) -> Finding:
    message = f"syntax error: {err.msg or err}"
    return Finding(
        path=path,
        line=err.lineno or 1,
        col=err.offset or 1,
        code=SYNTAX_ERROR,
        message=message,
        rule=SYNTAX_ERROR_NAME,
        fix="Fix the syntax error; the rest of this file was not checked",
        end_line=err.lineno or 1,
        end_col=err.offset or 1,
    )
