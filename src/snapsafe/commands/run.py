"""``snapsafe run``: initialise once, snapshot, restore N clones, invoke each once, show they are unique."""

from __future__ import annotations

import argparse
import sys

from snapsafe.commands.clones import add_clone_arguments, invoke_clones, print_report, summarise_run
from snapsafe.commands.common import add_engine_arguments, engine_options, parse_event, stop_on_sigterm
from snapsafe.engines import get_engine
from snapsafe.engines.base import SandboxError

HELP = "initialise a function once, snapshot it, restore clones and invoke each once"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run", help=HELP, description=HELP + ". Prints a row per clone and how restore compares to a cold start.",
        epilog="example: snapsafe run examples/hello.py:handler --clones 3 --event '{\"name\": \"Ada\"}'")
    add_engine_arguments(parser)
    add_clone_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    event = parse_event(args.event)
    options = engine_options(args)
    stop_on_sigterm()
    engine = get_engine(args.engine, options)
    try:
        with engine.start(args.target) as template, template.snapshot() as snapshot:
            rows = invoke_clones(snapshot, args.clones, event, args.timeout)
            summary = summarise_run(args.engine, args.target, rows, template.timings, snapshot.timings)
    except SandboxError as err:
        if args.verbose and err.details:
            print(err.details, file=sys.stderr, end="")
        raise
    print_report(rows, summary, as_json=args.json)
    return 0 if summary["failed"] == 0 else 1
