"""``snapsafe snapshot`` and ``snapsafe restore``: snapshots on disk (CRIU and VM engines)."""

from __future__ import annotations

import argparse
import json
import sys

from snapsafe.commands.clones import add_clone_arguments, invoke_clones, print_report, summarise_run
from snapsafe.commands.common import add_engine_arguments, engine_options, parse_event, stop_on_sigterm
from snapsafe.engines import Options, get_engine
from snapsafe.engines.base import SandboxError
from snapsafe.engines.manifest import load_manifest


def register(subparsers: argparse._SubParsersAction) -> None:
    snap = subparsers.add_parser(
        "snapshot", help="initialise a function and write its snapshot to a directory",
        description="Initialise TARGET, prepare it (hooks, secrets wiped) and write an on-disk snapshot "
                    "(manifest.json with checksums beside the engine's images). The directory must not exist.",
        epilog="example: snapsafe snapshot examples/hello.py:handler -o /tmp/hello.snap --engine criu")
    add_engine_arguments(snap)
    snap.add_argument("-o", "--output", required=True, metavar="DIR", help="the snapshot directory to create")
    snap.set_defaults(func=snapshot_command)

    restore = subparsers.add_parser(
        "restore", help="restore clones from a snapshot directory and invoke each once",
        description="Check DIR (manifest, format version, checksums, engine and tool versions), then restore "
                    "clones from it, make each unique and invoke it once.")
    restore.add_argument("directory", metavar="DIR", help="a directory written by `snapsafe snapshot`")
    restore.add_argument("--timeout", type=float, default=30.0, metavar="S", help="handler timeout (default 30)")
    restore.add_argument("--disable-restorer", action="append", default=[], metavar="NAME",
                         help="switch a built-in restorer off (repeatable; 'all' for every one)")
    add_clone_arguments(restore)
    restore.set_defaults(func=restore_command)


def snapshot_command(args: argparse.Namespace) -> int:
    options = engine_options(args)
    stop_on_sigterm()
    engine = get_engine(args.engine, options)
    try:
        with engine.start(args.target) as template, template.snapshot(args.output) as snap:
            timings = dict(snap.timings)
    except SandboxError as err:
        if args.verbose and err.details:
            print(err.details, file=sys.stderr, end="")
        raise
    manifest = load_manifest(args.output, verify=False)
    print(json.dumps({"snapshot": args.output, "engine": manifest.engine, "target": manifest.target,
                      "bytes": manifest.total_bytes, "files": len(manifest.files), **timings}))
    return 0


def restore_command(args: argparse.Namespace) -> int:
    event = parse_event(args.event)
    manifest = load_manifest(args.directory, verify=False)  # the engine verifies everything before restoring
    from snapsafe import restorers

    disabled = tuple(restorers.NAMES) if "all" in args.disable_restorer else tuple(args.disable_restorer)
    stop_on_sigterm()
    engine = get_engine(manifest.engine, Options(disable_restorers=disabled, lazy_restore=args.lazy))
    with engine.open_snapshot(args.directory) as snap:
        rows = invoke_clones(snap, args.clones, event, args.timeout)
        summary = summarise_run(manifest.engine, manifest.target, rows, {}, snap.timings)
    print_report(rows, summary, as_json=args.json)
    return 0 if summary["failed"] == 0 else 1
