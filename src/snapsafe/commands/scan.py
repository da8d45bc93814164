"""``snapsafe scan PATH...``: report init code that breaks uniqueness when a snapshot is cloned."""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import UsageError


def _epilog() -> str:
    from ..audit.scan.codes import RULES

    rows = "\n".join(f"  {code}  {rule.name:<22} {rule.summary}" for code, rule in RULES.items())
    return (
        f"rules:\n{rows}\n\n"
        "Init code is module-level code (not under `if __name__ == \"__main__\":`), class bodies, default\n"
        "arguments, and same-file functions that init code calls. Functions registered with\n"
        "@snapsafe.after_restore or snapshot_restore_py.register_after_restore are not init code.\n"
        "Silence a line with `# noqa: SNAP001` (plus a reason). Rule pages: docs/rules/.\n\n"
        "exit status: 0 no findings (or --exit-zero), 1 findings, 2 usage error or a file that does not parse"
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "scan",
        help="check init code for snapshot-uniqueness hazards (PRNGs, ids, times, connections, secrets, threads)",
        description=(
            "Statically check the code that runs at initialisation, before a snapshot, for state that every "
            "clone would share: generators, unique ids, timestamps, connections, secrets and threads."
        ),
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files, or directories walked for *.py")
    parser.add_argument("--format", choices=("text", "json", "sarif"), default="text", help="output format")
    parser.add_argument("--select", metavar="CODES", help="comma-separated codes or prefixes to check (default: all)")
    parser.add_argument("--ignore", metavar="CODES", help="comma-separated codes or prefixes not to check")
    parser.add_argument("--exit-zero", action="store_true", help="exit 0 even when there are findings")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..audit.scan import UnknownCodeError, scan_paths, select_codes
    from ..audit.scan.render import RENDERERS
    from ..audit.scan.render.text import summary

    try:
        codes = select_codes(args.select, args.ignore)
    except UnknownCodeError as err:
        raise UsageError(str(err)) from None
    missing = [p for p in args.paths if not os.path.exists(p)]
    if missing:
        raise UsageError(f"no such file or directory: {missing[0]}")
    result = scan_paths(args.paths, codes)
    for skipped in result.skipped:
        print(f"snapsafe scan: skipped {skipped.path}: {skipped.reason}", file=sys.stderr)
    if result.files == 0 and not result.skipped:
        print("snapsafe scan: warning: no Python files found under the given paths", file=sys.stderr)
    sys.stdout.write(RENDERERS[args.format](result))
    sys.stdout.flush()
    if args.format == "text":
        print(summary(result), file=sys.stderr)
    if result.errors:
        return 2
    return 1 if result.findings and not args.exit_zero else 0
