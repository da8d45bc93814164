"""``snapsafe audit``: prove uniqueness on live clones (and, with --leaks, that secrets stay out of
snapshots)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from snapsafe.commands.common import add_engine_arguments, engine_options, parse_event, stop_on_sigterm
from snapsafe.engines import get_engine
from snapsafe.engines.base import SandboxError

HELP = "compare cold starts with restored clones and report values that cloning duplicated"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "audit", help=HELP,
        description=HELP + ". A value that differs between cold starts but is identical in two or more clones is "
                           "uniqueness lost to cloning. Exit 1 on any finding outside the known-by-design list.",
        epilog="example: snapsafe audit examples/hello.py:handler --clones 8 --cold 2")
    add_engine_arguments(parser)
    parser.add_argument("--clones", type=int, default=8, metavar="N", help="clones to restore (default 8)")
    parser.add_argument("--cold", type=int, default=2, metavar="K",
                        help="ordinary cold starts to compare with (default 2, at least 2)")
    parser.add_argument("--event", metavar="JSON|@FILE", help="the event for every invocation (default {})")
    parser.add_argument("--leaks", action="store_true",
                        help="also fill every snapsafe.Secret with a canary before a snapshot and search the "
                             "snapshot for it (with a control canary in ordinary memory that must be found)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=audit)


def audit(args: argparse.Namespace) -> int:
    from snapsafe.audit.differential import analyse, clone_fingerprints, cold_fingerprints
    from snapsafe.errors import UsageError

    if args.cold < 2 or args.clones < 2:
        raise UsageError("--cold and --clones must each be at least 2 (a duplicate needs two of each)")
    event = parse_event(args.event)
    options = engine_options(args)
    options.output = None if args.json else options.output
    stop_on_sigterm()
    try:
        if options.runtime == "lambda":  # cold starts import the handler the ordinary way
            from snapsafe.commands.common import lambda_target

            cold = cold_fingerprints(lambda_target(args.target), event, args.cold, cwd=options.cwd)
        else:
            cold = cold_fingerprints(args.target, event, args.cold)
        with get_engine(args.engine, options).start(args.target) as template, template.snapshot() as snapshot:
            clones, errors = clone_fingerprints(snapshot, event, args.clones, args.timeout)
        leak = None
        if args.leaks:
            from snapsafe.audit.leaks import canary_check

            leak = canary_check(args.engine, args.target, {"allow_threads": args.allow_threads})
    except SandboxError as err:
        if args.verbose and err.details:
            print(err.details, file=sys.stderr, end="")
        raise
    report = analyse(cold, clones, options.disable_restorers)
    failed = bool(report.failing) or bool(errors) or (leak is not None and not leak.passed)
    if args.json:
        print(json.dumps(_as_json(args, report, errors, leak), default=repr))
    else:
        _print_text(args, report, errors, leak)
    return 1 if failed else 0


def _as_json(args: argparse.Namespace, report: Any, errors: list[str], leak: Any) -> dict[str, Any]:
    return {
        "target": args.target, "engine": args.engine, "cold": report.cold, "clones": report.clones,
        "compared": report.compared, "constants": report.constants,
        "findings": [dataclasses.asdict(f) for f in report.findings],
        "failing": len(report.failing), "clone_errors": errors,
        "leaks": None if leak is None else {"passed": leak.passed, "secret_hits": len(leak.secret_hits),
                                            "control_hits": len(leak.control_hits),
                                            "secrets_planted": leak.secrets_planted,
                                            "bytes_searched": leak.bytes_searched, "summary": leak.describe()},
    }


def _short(value: Any) -> str:
    text = json.dumps(value, default=repr)
    return text if len(text) <= 40 else text[:39] + "…"


def _print_text(args: argparse.Namespace, report: Any, errors: list[str], leak: Any) -> None:
    print(f"snapsafe audit: {args.target} on the {args.engine} engine: {report.cold} cold starts, "
          f"{report.clones} clones, {report.compared} values compared ({report.constants} constant)")
    labels = {"snapsafe-bug": "SNAPSAFE BUG", "restorer-disabled": "DISABLED", "user": "DUPLICATE", "known": "known"}
    for f in report.findings:
        where = f.json_path or f.key
        print(f"  {labels[f.category]:12s} {where}: {_short(f.value)} in {len(f.clones)} of {report.clones} clones "
              f"({', '.join(f.clones[:4])}{', …' if len(f.clones) > 4 else ''}); differs between cold starts")
        print(f"  {'':12s} {f.note}")
    for err in errors:
        print(f"  CLONE ERROR  {err}")
    if leak is not None:
        print(f"  leaks: {leak.describe()}")
    failing = len(report.failing)
    print(f"{failing} finding(s) outside the known list" if failing else "no uniqueness lost to cloning"
          + (f" ({len(report.findings)} known, shared by design)" if report.findings else ""))
