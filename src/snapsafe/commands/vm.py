"""``snapsafe vm ...``: the VM engine's own commands (``build-image``)."""

from __future__ import annotations

import argparse
import json
import time

from snapsafe.errors import TargetError


def register(subparsers: argparse._SubParsersAction) -> None:
    vm = subparsers.add_parser("vm", help="VM engine tools (build the guest image)",
                               description="Tools of the VM engine (--engine vm).")
    commands = vm.add_subparsers(dest="vm_command", metavar="COMMAND", required=True)
    build = commands.add_parser(
        "build-image", help="build (or find in the cache) the guest initramfs for a target",
        description="Import TARGET once on the host to find what it needs, then build the initramfs the VM "
                    "engine boots: busybox, this Python with its libraries and standard library, snapsafe, the "
                    "target and its packages. Cached by content; prints one JSON line.",
        epilog="example: snapsafe vm build-image examples/numpy_heavy.py:handler")
    build.add_argument("target", metavar="TARGET", help="path/to/file.py:function or package.module:function")
    build.set_defaults(func=build_image)


def build_image(args: argparse.Namespace) -> int:
    from snapsafe.engines.vm import image

    start = time.perf_counter()
    try:
        img = image.build(args.target)
    except image.TargetImportError as err:
        raise TargetError(f"{args.target}: {err}") from None
    print(json.dumps({"image": str(img.path), "bytes": img.size, "key": img.key, "guest_target": img.guest_target,
                      "ms": round((time.perf_counter() - start) * 1000, 1)}))
    return 0
