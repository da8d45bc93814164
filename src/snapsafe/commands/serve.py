"""``snapsafe serve``: a function runtime answering the AWS Lambda Invoke API from restored clones."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import signal
import socket
import sys

from snapsafe.commands.common import add_engine_arguments, engine_options, stop_on_sigterm
from snapsafe.engines import get_engine
from snapsafe.engines.base import SandboxError, Snapshot
from snapsafe.errors import EnvironmentProblem, UsageError

HELP = "serve a function over the AWS Lambda Invoke API from restored clones"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve", help=HELP,
        description=HELP + ". Initialises TARGET once, snapshots it, keeps --min-idle clones restored and "
                           "unique, and restores more on demand up to --max-clones.",
        epilog="example: snapsafe serve examples/hello.py:handler --port 9000\n"
               "  curl -d '{\"name\": \"Ada\"}' http://127.0.0.1:9000/2015-03-31/functions/function/invocations",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_engine_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, loopback only)")
    parser.add_argument("--port", type=int, default=9000, help="port to bind; 0 picks a free one (default 9000)")
    parser.add_argument("--min-idle", type=int, default=1, metavar="K",
                        help="clones kept restored and idle (default 1)")
    parser.add_argument("--max-clones", type=int, default=10, metavar="M",
                        help="clones alive at most; more concurrent requests get 429 (default 10)")
    parser.add_argument("--idle-timeout", type=float, default=300.0, metavar="S",
                        help="retire clones idle this long, beyond --min-idle (default 300)")
    parser.add_argument("--fresh", action="store_true", help="a new clone for every invocation")
    parser.add_argument("--grace", type=float, default=10.0, metavar="S",
                        help="on SIGTERM/Ctrl-C, seconds in-flight invocations may take to finish (default 10)")
    parser.set_defaults(func=serve)


def _check_args(args: argparse.Namespace) -> None:
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be 0..65535, got {args.port}")
    if args.max_clones < 1:
        raise UsageError(f"--max-clones must be at least 1, got {args.max_clones}")
    if not 0 <= args.min_idle <= args.max_clones:
        raise UsageError(f"--min-idle must be between 0 and --max-clones ({args.max_clones}), got {args.min_idle}")
    if args.idle_timeout <= 0 or args.grace < 0:
        raise UsageError("--idle-timeout must be positive and --grace not negative")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(args: argparse.Namespace) -> int:
    _check_args(args)
    options = engine_options(args)
    if not _is_loopback(args.host):
        print(f"snapsafe serve: warning: binding to {args.host}: the function is reachable from other machines "
              "and the Invoke API has no authentication", file=sys.stderr)
    listener = _bind(args.host, args.port)  # before the slow init, so a busy port fails at once
    stop_on_sigterm()
    engine = get_engine(args.engine, options)
    try:
        with listener, engine.start(args.target) as template, template.snapshot() as snapshot:
            name = args.function_name or template.function_name
            return asyncio.run(_serve(args, snapshot, name, listener))
    except SandboxError as err:
        if args.verbose and err.details:
            print(err.details, file=sys.stderr, end="")
        raise


def _bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise UsageError(f"cannot resolve --host {host}: {err.strerror}") from None
    family, kind, proto, _name, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(512)
    except OSError as err:
        sock.close()
        raise EnvironmentProblem(f"cannot listen on {host}:{port}: {err.strerror}") from None
    return sock


async def _serve(args: argparse.Namespace, snapshot: Snapshot, name: str, listener: socket.socket) -> int:
    from aiohttp import web

    from snapsafe.runtime.metrics import Metrics
    from snapsafe.runtime.pool import ClonePool, PoolEvents
    from snapsafe.runtime.server import FunctionConfig, InvokeApi

    metrics = Metrics(name)

    def restored(clone) -> None:  # type: ignore[no-untyped-def]
        metrics.restore_seconds.labels(name).observe(clone.timings.get("ready_ms", 0.0) / 1000)
        metrics.unique_seconds.labels(name).observe(clone.timings.get("unique_ms", 0.0) / 1000)

    def retired(clone, reason: str) -> None:  # type: ignore[no-untyped-def]
        metrics.retired.labels(name, reason).inc()

    pool = ClonePool(snapshot, min_idle=args.min_idle, max_clones=args.max_clones, fresh=args.fresh,
                     idle_timeout=args.idle_timeout, events=PoolEvents(restored=restored, retired=retired))
    api = InvokeApi(pool, FunctionConfig(name=name, timeout=args.timeout), metrics)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(api.app(), access_log=None, handle_signals=False, shutdown_timeout=args.grace)
    await runner.setup()
    try:
        await pool.start()
        site = web.SockSite(runner, listener)
        await site.start()
        host, port = listener.getsockname()[:2]
        url = f"http://{host}:{port}" if ":" not in host else f"http://[{host}]:{port}"
        print(f"snapsafe serve: function {name!r} ({args.target}, {args.engine} engine) listening on {url}\n"
              f"  invoke: curl -d '{{}}' {url}/2015-03-31/functions/{name}/invocations\n"
              f"  clones: {pool.idle} idle, at most {args.max_clones}{', fresh per invocation' if args.fresh else ''}",
              flush=True)
        await stop.wait()
        print("snapsafe serve: stopping: finishing in-flight invocations", file=sys.stderr, flush=True)
        await api.drain(args.grace)
    finally:
        api.stopping = True
        await runner.cleanup()  # stops listening, waits up to --grace for in-flight requests
        await pool.close()
    return 0
