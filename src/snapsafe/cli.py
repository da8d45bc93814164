"""The ``snapsafe`` command.

Every subcommand lives in its own module and exposes ``register(subparsers)``, which adds its
parser and sets ``func(args) -> int`` on it. Errors derived from :class:`snapsafe.errors.UserError`
print one line and exit with their code; ``--verbose`` adds the traceback.
Exit codes: 0 ok, 1 findings or failures, 2 usage or environment errors.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback

from . import __version__
from .errors import UserError

#: Modules that provide a subcommand, in the order ``--help`` lists them.
COMMAND_MODULES = (
    "snapsafe.commands.run",
    "snapsafe.commands.snapshot",
    "snapsafe.commands.serve",
    "snapsafe.commands.scan",
    "snapsafe.commands.vm",
    "snapsafe.commands.doctor",
    "snapsafe.commands.audit",
    "snapsafe.commands.leaks",
    "snapsafe.commands.bench",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="snapsafe",
        description="Snapshot an initialised Python function, restore clones, and make every clone unique.",
    )
    parser.add_argument("--version", action="version", version=f"snapsafe {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show tracebacks and engine details")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)  # a broken command module must fail loudly, not vanish
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as err:
        if args.verbose:
            traceback.print_exc()
        print(f"snapsafe {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"snapsafe {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
