"""Restoring clones, invoking them, and reporting the rows: shared by `run` and `restore`."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from snapsafe.commands.common import summarise
from snapsafe.engines.base import CloneFailed, Snapshot


def add_clone_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clones", type=_positive_int, default=3, metavar="N",
                        help="how many clones to restore (default 3)")
    parser.add_argument("--event", metavar="JSON|@FILE", help="the event passed to every clone (default {})")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object per clone, then one with the key 'summary'")
    parser.add_argument("--lazy", action="store_true",
                        help="restore each clone's memory on demand (criu engine: criu lazy-pages)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def invoke_clones(snapshot: Snapshot, count: int, event: Any, timeout: float) -> list[dict[str, Any]]:
    """Restore ``count`` clones one after the other (all alive together), invoke each once."""
    clones = []
    rows = []
    try:
        for n in range(count):
            rows.append(_restore_and_invoke(snapshot, n, event, timeout, clones))
    finally:
        for clone in clones:
            clone.close()
    return rows


def _restore_and_invoke(snapshot: Snapshot, n: int, event: Any, timeout: float, clones: list) -> dict[str, Any]:
    row: dict[str, Any] = {"clone": None, "generation": None, "pid": None, "restore_ms": None, "unique_ms": None,
                           "ready_ms": None, "invoke_ms": None, "result": None, "error": None}
    try:
        clone = snapshot.restore()
    except CloneFailed as err:
        row.update(clone=f"clone-{n + 1}", error={"errorType": err.error_type, "errorMessage": str(err)})
        return row
    clones.append(clone)
    row.update(clone=clone.id, generation=clone.generation, pid=clone.pid,
               restore_ms=clone.timings.get("restore_ms"), unique_ms=clone.timings.get("unique_ms"),
               ready_ms=clone.timings.get("ready_ms"))
    try:
        result = clone.invoke(event, timeout=timeout)
    except CloneFailed as err:
        row["error"] = {"errorType": err.error_type, "errorMessage": str(err)}
        return row
    row["invoke_ms"] = result.invoke_ms
    if result.ok:
        row["result"] = result.payload
    else:
        row["error"] = result.error
    return row


def summarise_run(engine: str, target: str, rows: list[dict[str, Any]], template_timings: dict[str, float],
                  snapshot_timings: dict[str, float]) -> dict[str, Any]:
    first_answer = [r["ready_ms"] + r["invoke_ms"] for r in rows if r["ready_ms"] is not None and r["invoke_ms"]]
    cold = template_timings.get("cold_start_ms")
    generations = [r["generation"] for r in rows if r["generation"] is not None]
    median_first = summarise(first_answer).get("median")
    return {
        "engine": engine,
        "target": target,
        "clones": len(rows),
        "failed": sum(1 for r in rows if r["error"] is not None),
        "distinct_generations": len(set(generations)) == len(generations),
        "cold_start_ms": cold,
        "init_ms": template_timings.get("init_ms"),
        "snapshot_ms": snapshot_timings.get("snapshot_ms"),
        "restore_ms": summarise([r["restore_ms"] for r in rows if r["restore_ms"] is not None]),
        "unique_ms": summarise([r["unique_ms"] for r in rows if r["unique_ms"] is not None]),
        "first_answer_ms": summarise(first_answer),
        "speedup_vs_cold": (cold / median_first) if cold and median_first else None,
        "timestamp": time.time(),
    }


def _fmt(value: Any, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_report(rows: list[dict[str, Any]], summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        for row in rows:
            print(json.dumps(row))
        print(json.dumps({"summary": summary}))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"{summary['target']} on the {summary['engine']} engine (times in ms)")
    for heading in ("clone", "gen", "restore", "unique", "invoke", "result"):
        table.add_column(heading, justify="right" if heading in ("gen", "restore", "unique", "invoke") else "left",
                         no_wrap=True)
    for row in rows:
        if row["error"] is not None:
            outcome = f"{row['error'].get('errorType')}: {row['error'].get('errorMessage')}"[:60]
            outcome = f"[red]{escape(outcome)}[/red]"
        else:
            outcome = json.dumps(row["result"], separators=(",", ":"))
            outcome = escape(outcome if len(outcome) <= 28 else outcome[:27] + "…")
        table.add_row(row["clone"], str(row["generation"]), _fmt(row["restore_ms"]), _fmt(row["unique_ms"], 3),
                      _fmt(row["invoke_ms"]), outcome)
    console = Console(highlight=False)
    console.print(table)
    first = summary["first_answer_ms"].get("median")
    if summary["cold_start_ms"] and first:
        console.print(f"cold start (new interpreter + init): {summary['cold_start_ms']:.1f} ms; "
                      f"restore + unique + first answer: {first:.2f} ms median "
                      f"([bold]{summary['speedup_vs_cold']:.0f}x faster[/bold])")
    elif first:
        console.print(f"restore + unique + first answer: {first:.2f} ms median")
    if summary["failed"]:
        console.print(f"[red]{summary['failed']} of {summary['clones']} clones failed[/red]")


__all__ = ["add_clone_arguments", "invoke_clones", "print_report", "summarise_run"]
