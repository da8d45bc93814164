"""Arguments and helpers that several commands share (engine choice, events, signals)."""

from __future__ import annotations

import argparse
import json
import signal
import statistics
from collections.abc import Sequence
from typing import Any

from snapsafe.engines import ENGINES, Options
from snapsafe.errors import UsageError


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="TARGET",
                        help="path/to/file.py:function or package.module:function (a Lambda-style handler)")
    parser.add_argument("--engine", default="fork", choices=sorted(ENGINES),
                        help="how sandboxes are snapshotted and cloned (default: fork)")
    parser.add_argument("--function-name", default="", help="the function's name in the context (default: the handler)")
    parser.add_argument("--memory", type=int, default=128, metavar="MB",
                        help="context.memory_limit_in_mb (default 128)")
    parser.add_argument("--timeout", type=float, default=30.0, metavar="S",
                        help="seconds a handler may run before its clone is stopped (default 30)")
    parser.add_argument("--allow-threads", action="store_true",
                        help="snapshot even though init started threads (they do not exist in clones)")
    parser.add_argument("--disable-restorer", action="append", default=[], metavar="NAME",
                        help="switch a built-in restorer off (repeatable; 'all' for every one)")
    parser.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto",
                        help="VM engine: auto picks KVM only where it is hardware KVM, else TCG (default auto)")
    parser.add_argument("--runtime", choices=("python", "lambda"), default="python",
                        help="lambda: TARGET is Lambda's handler (module.function), run by AWS's runtime client "
                             "(awslambdaric) under SnapStart; needs --engine criu or vm (docs/snapstart.md)")
    parser.add_argument("--code", metavar="DIR", help="--runtime lambda: the function's code (default: the current "
                                                      "directory), as LAMBDA_TASK_ROOT")


def engine_options(args: argparse.Namespace) -> Options:
    from snapsafe import restorers

    disabled = tuple(args.disable_restorer)
    if "all" in disabled:
        disabled = restorers.NAMES
    unknown = set(disabled) - set(restorers.NAMES)
    if unknown:
        raise UsageError(f"unknown restorer {', '.join(sorted(unknown))}; known: {', '.join(restorers.NAMES)}")
    if args.timeout <= 0:
        raise UsageError(f"--timeout must be positive, got {args.timeout:g}")
    lazy = getattr(args, "lazy", False)
    if lazy and args.engine == "fork":
        raise UsageError("--lazy needs an engine that restores memory from images (--engine criu)")
    runtime = getattr(args, "runtime", "python")
    code = getattr(args, "code", None)
    if runtime == "lambda":
        code = check_lambda_handler(args.target, code)
        if args.engine == "fork":
            raise UsageError("--runtime lambda needs --engine criu or --engine vm: the fork engine clones the "
                             "agent only, not the runtime client's process")
    elif code:
        raise UsageError("--code is for --runtime lambda")
    return Options(function_name=args.function_name, memory_mb=args.memory, allow_threads=args.allow_threads,
                   disable_restorers=disabled, accel=args.accel, lazy_restore=lazy, runtime=runtime, cwd=code)


def check_lambda_handler(handler: str, code: str | None) -> str:
    """Resolve ``module.function`` in ``code`` (default: the current directory) as Lambda resolves
    ``_HANDLER`` in LAMBDA_TASK_ROOT; returns the absolute code directory."""
    import os

    root = os.path.abspath(code or os.getcwd())
    if not os.path.isdir(root):
        raise UsageError(f"--code {code}: not a directory")
    module, dot, function = handler.rpartition(".")
    if not dot or not module or not function.isidentifier() or ":" in handler:
        raise UsageError(f"handler {handler!r} must look like module.function (Lambda's handler setting, "
                         "e.g. app.handler)")
    path = os.path.join(root, *module.replace("/", ".").split("."))
    if not (os.path.isfile(path + ".py") or os.path.isfile(os.path.join(path, "__init__.py"))):
        raise UsageError(f"handler {handler!r}: no {module.replace('.', '/')}.py in {root} (pass --code DIR)")
    return root


def lambda_target(handler: str) -> str:
    """Lambda's ``pkg/mod.fn`` as snapsafe's ``pkg.mod:fn`` (for ordinary imports: cold starts, image builds)."""
    module, _, function = handler.rpartition(".")
    return f"{module.replace('/', '.')}:{function}"


def parse_event(text: str | None) -> Any:
    """``--event`` as JSON text, or ``@file.json``; ``{}`` when absent."""
    if text is None:
        return {}
    source = "--event"
    if text.startswith("@"):
        source = text[1:]
        try:
            with open(source, encoding="utf-8") as f:
                text = f.read()
        except OSError as err:
            raise UsageError(f"cannot read the event file {source}: {err.strerror}") from None
    try:
        return json.loads(text)
    except ValueError as err:
        raise UsageError(f"{source} is not valid JSON: {err}") from None


def stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C does, so every `with` block ends its sandboxes."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def summarise(values: Sequence[float]) -> dict[str, float]:
    """min / median / p99 / max of ``values`` (empty dict when there are none)."""
    if not values:
        return {}
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return {"min": ordered[0], "median": statistics.median(ordered), "p99": p99, "max": ordered[-1]}
