"""``snapsafe run``: initialise once, snapshot, restore N clones, invoke each once, show they are unique."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from snapsafe.commands.common import add_engine_arguments, engine_options, parse_event, stop_on_sigterm, summarise
from snapsafe.engines import get_engine
from snapsafe.engines.base import CloneFailed, SandboxError

HELP = "initialise a function once, snapshot it, restore clones and invoke each once"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run", help=HELP, description=HELP + ". Prints a row per clone and how restore compares to a cold start.",
        epilog="example: snapsafe run examples/hello.py:handler --clones 3 --event '{\"name\": \"Ada\"}'")
    add_engine_arguments(parser)
    parser.add_argument("--clones", type=int, default=3, metavar="N", help="how many clones to restore (default 3)")
    parser.add_argument("--event", metavar="JSON|@FILE", help="the event passed to every clone (default {})")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object per clone, then one with the key 'summary'")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.clones < 1:
        from snapsafe.errors import UsageError

        raise UsageError(f"--clones must be at least 1, got {args.clones}")
    event = parse_event(args.event)
    options = engine_options(args)
    stop_on_sigterm()
    engine = get_engine(args.engine, options)
    rows: list[dict[str, Any]] = []
    try:
        with engine.start(args.target) as template, template.snapshot() as snapshot:
            clones = []
            try:
                for _ in range(args.clones):
                    rows.append(_restore_and_invoke(snapshot, event, args.timeout, clones))
            finally:
                for clone in clones:
                    clone.close()
            summary = _summary(args, template, snapshot, rows)
    except SandboxError as err:
        if args.verbose and err.details:
            print(err.details, file=sys.stderr, end="")
        raise
    if args.json:
        for row in rows:
            print(json.dumps(row))
        print(json.dumps({"summary": summary}))
    else:
        _print_table(rows, summary)
    return 0 if summary["failed"] == 0 else 1


def _restore_and_invoke(snapshot, event: Any, timeout: float, clones: list) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    row: dict[str, Any] = {"clone": None, "generation": None, "pid": None, "restore_ms": None, "unique_ms": None,
                           "ready_ms": None, "invoke_ms": None, "result": None, "error": None}
    try:
        clone = snapshot.restore()
    except CloneFailed as err:
        row.update(clone=f"clone-{len(clones) + 1}", error={"errorType": err.error_type, "errorMessage": str(err)})
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


def _summary(args: argparse.Namespace, template, snapshot, rows: list[dict[str, Any]]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    first_answer = [r["ready_ms"] + r["invoke_ms"] for r in rows if r["ready_ms"] is not None and r["invoke_ms"]]
    cold = template.timings.get("cold_start_ms")
    generations = [r["generation"] for r in rows if r["generation"] is not None]
    median_first = summarise(first_answer).get("median")
    return {
        "engine": args.engine,
        "target": args.target,
        "clones": len(rows),
        "failed": sum(1 for r in rows if r["error"] is not None),
        "distinct_generations": len(set(generations)) == len(generations),
        "cold_start_ms": cold,
        "init_ms": template.timings.get("init_ms"),
        "snapshot_ms": snapshot.timings.get("snapshot_ms"),
        "restore_ms": summarise([r["restore_ms"] for r in rows if r["restore_ms"] is not None]),
        "unique_ms": summarise([r["unique_ms"] for r in rows if r["unique_ms"] is not None]),
        "first_answer_ms": summarise(first_answer),
        "speedup_vs_cold": (cold / median_first) if cold and median_first else None,
        "timestamp": time.time(),
    }


def _fmt(value: Any, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _print_table(rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
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
    if summary["failed"]:
        console.print(f"[red]{summary['failed']} of {summary['clones']} clones failed[/red]")
