"""``snapsafe doctor``: which engines work here, and why not when they do not."""

from __future__ import annotations

import argparse

from snapsafe.engines import ENGINES, Options, get_engine
from snapsafe.errors import UserError

HELP = "check which engines can run here (QEMU, guest kernel, accelerator, CRIU, ...)"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("doctor", help=HELP, description=HELP + ". Exit 1 if any engine is unusable.")
    parser.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto",
                        help="the VM accelerator to check (default auto)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    unusable = 0
    for name in ENGINES:
        try:
            print(f"ok       {get_engine(name, Options(accel=args.accel)).check()}")
        except (UserError, ImportError) as err:
            unusable += 1
            print(f"missing  {name}: {err}")
    return 1 if unusable else 0
