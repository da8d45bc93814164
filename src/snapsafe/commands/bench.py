"""``snapsafe bench``: every engine against cold start and the alternatives, side by side."""

from __future__ import annotations

import argparse
import json

from snapsafe.errors import UsageError

HELP = "measure every engine against cold start and the alternatives, with plots"


def register(subparsers: argparse._SubParsersAction) -> None:
    from snapsafe.bench.workloads import WORKLOADS
    from snapsafe.engines import ENGINES

    parser = subparsers.add_parser(
        "bench", help=HELP,
        description=HELP + ". Per workload and round, one sample of each path, interleaved: a cold start, the "
                           "multiprocessing forkserver with the workload preloaded, a prefork pool, and each "
                           "engine's restore + uniqueness + first answer next to its raw floor. Unavailable "
                           "engines are skipped with the reason.",
        epilog=f"workloads: {', '.join(f'{k} ({v[1]})' for k, v in WORKLOADS.items())}\n"
               "--quick: 3 runs, memory for 1 and 10 clones, the vm engine on hello only (TCG is slow)",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engines", default=",".join(ENGINES), help=f"comma-separated (default {','.join(ENGINES)})")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated (default all)")
    parser.add_argument("--runs", type=int, default=20, metavar="N", help="samples per measurement (default 20)")
    parser.add_argument("--clones", default="1,10,50", metavar="N,N,...",
                        help="clone counts for the memory measurement (default 1,10,50)")
    parser.add_argument("--json", metavar="FILE", help="write the results, with the machine description, here")
    parser.add_argument("--plot", metavar="FILE.png", help="write latency and memory plots here (needs matplotlib)")
    parser.add_argument("--quick", action="store_true", help="a short run (see below)")
    parser.set_defaults(func=bench)


def _split(text: str, known: tuple[str, ...] | list[str], what: str) -> tuple[str, ...]:
    items = tuple(x.strip() for x in text.split(",") if x.strip())
    unknown = [x for x in items if x not in known]
    if unknown or not items:
        raise UsageError(f"unknown {what} {', '.join(unknown) or '(none given)'}; choose from {', '.join(known)}")
    return items


def bench(args: argparse.Namespace) -> int:
    from rich.console import Console

    from snapsafe.bench import report as report_mod
    from snapsafe.bench.run import run
    from snapsafe.bench.workloads import WORKLOADS
    from snapsafe.commands.common import stop_on_sigterm
    from snapsafe.engines import ENGINES

    engines = _split(args.engines, list(ENGINES), "engine")
    workloads = _split(args.workloads, list(WORKLOADS), "workload")
    try:
        counts = tuple(int(x) for x in args.clones.split(","))
    except ValueError:
        raise UsageError(f"--clones takes comma-separated numbers, got {args.clones!r}") from None
    runs = args.runs
    limits = None
    if args.quick:
        runs, counts, limits = 3, tuple(c for c in counts if c <= 10) or (1,), {"vm": ("hello",)}
    if runs < 2 or any(c < 1 for c in counts):
        raise UsageError("--runs must be at least 2 and every --clones count at least 1")
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UsageError("--plot needs matplotlib: pip install 'snapsafe[bench]'") from None
    stop_on_sigterm()
    console = Console(stderr=True)
    with console.status("starting") as status:
        result = run(engines, workloads, runs, counts, lambda text: status.update(text),
                     generation_rounds=10 if args.quick else 30, engine_workloads=limits)
    report_mod.print_tables(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    if args.plot:
        report_mod.plot(result, args.plot)
    return 0
