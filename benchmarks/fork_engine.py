"""Fork engine against a cold start, the alternatives and the raw fork floor, interleaved in one run.

    python benchmarks/fork_engine.py [--workloads hello,scipy] [--rounds 20]

The same measurement as `snapsafe bench --engines fork` (snapsafe.bench.run): per round one
sample of each path. Targets (SPECIFICATION.md): fork engine <= 1.3x the raw floor; >= 50x faster
than a cold start on scipy; time-to-unique < 1 ms median.
"""

from __future__ import annotations

import argparse

from snapsafe.bench.report import print_tables
from snapsafe.bench.run import run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="hello,scipy")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    report = run(("fork",), tuple(args.workloads.split(",")), args.rounds, (1,), progress=lambda text: None)
    print_tables(report)


if __name__ == "__main__":
    main()
