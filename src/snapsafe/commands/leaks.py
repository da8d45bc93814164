"""``snapsafe leaks``: search snapshot memory for secrets (canaries) that must not be there."""

from __future__ import annotations

import argparse
import json
import string

from snapsafe.errors import UsageError

HELP = "search a snapshot's memory for byte strings that must not be there"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "leaks", help=HELP,
        description=HELP + ". Either search an on-disk snapshot (CRIU page images, a VM's RAM file) for "
                           "--canary values, or, with --secrets-from TARGET, start TARGET, fill every "
                           "snapsafe.Secret with a fresh canary, snapshot it and search the snapshot (a control "
                           "canary in ordinary memory must be found, so a clean result means something).",
        epilog="examples:\n  snapsafe leaks --secrets-from examples/secret_refill.py:handler\n"
               "  snapsafe leaks /tmp/app.snap --canary 8f1e2d3c4b5a69788796a5b4c3d2e1f0",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("snapshot", nargs="?", metavar="SNAPSHOT", help="a snapshot directory (criu or vm engine)")
    parser.add_argument("--canary", action="append", default=[], metavar="HEX",
                        help="a byte string to look for, in hex (repeatable; at least 4 bytes)")
    parser.add_argument("--secrets-from", metavar="TARGET", help="run the canary check on TARGET")
    parser.add_argument("--engine", default="fork", help="engine for --secrets-from (default fork)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=leaks)


def _parse_canary(text: str) -> bytes:
    text = text.lower().removeprefix("0x")
    if len(text) % 2 or not text or any(c not in string.hexdigits for c in text):
        raise UsageError(f"--canary {text!r} is not an even number of hex digits")
    if len(text) < 8:
        raise UsageError(f"--canary {text!r} is shorter than 4 bytes: it would match by chance")
    return bytes.fromhex(text)


def leaks(args: argparse.Namespace) -> int:
    from snapsafe.audit import leaks as search_mod

    if bool(args.snapshot) == bool(args.secrets_from):
        raise UsageError("give either a SNAPSHOT directory with --canary, or --secrets-from TARGET")
    if args.secrets_from:
        check = search_mod.canary_check(args.engine, args.secrets_from)
        if args.json:
            print(json.dumps({"target": args.secrets_from, "engine": args.engine, "passed": check.passed,
                              "secret_hits": len(check.secret_hits), "control_hits": len(check.control_hits),
                              "bytes_searched": check.bytes_searched, "summary": check.describe()}))
        else:
            print(f"snapsafe leaks: {args.secrets_from} ({args.engine} engine): {check.describe()}")
        return 0 if check.passed else 1
    if not args.canary:
        raise UsageError("give at least one --canary HEX to search the snapshot for")
    needles = {c: _parse_canary(c) for c in args.canary}
    from snapsafe.engines import get_engine
    from snapsafe.engines.manifest import load_manifest

    manifest = load_manifest(args.snapshot)
    engine = get_engine(manifest.engine)
    memory_files = getattr(engine, "memory_files", None)
    if memory_files is None:
        raise UsageError(f"the {manifest.engine} engine does not expose snapshot memory")
    sources = search_mod.file_sources(memory_files(args.snapshot))
    hits = search_mod.search(sources, needles)
    if args.json:
        print(json.dumps({"snapshot": args.snapshot, "bytes_searched": sum(s.size() for s in sources),
                          "hits": [{"canary": h.needle, "file": h.source, "offset": h.offset} for h in hits]}))
    else:
        for h in hits:
            print(f"{h.source}:{h.offset:#x}: {h.needle}")
        print(f"{len(hits)} hit(s) in {sum(s.size() for s in sources) / 2**20:.1f} MiB of snapshot memory")
    return 1 if hits else 0
