"""Cost of `snapsafe.generation()` next to a bare memoryview read, os.getpid() and os.urandom(16).

    python benchmarks/generation_cost.py [--rounds 30] [--loops 200000]

Per-call nanoseconds, min/median/p99 over interleaved rounds (snapsafe.bench.gencost).
Target (SPECIFICATION.md): generation() within 2x of the bare memoryview read.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _stats import machine, stats  # noqa: E402

from snapsafe.bench.gencost import measure  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--loops", type=int, default=200_000)
    args = parser.parse_args()
    results = measure(args.rounds, args.loops)
    print(f"machine: {machine()}")
    print(f"{'call':24s} {'min':>8s} {'median':>8s} {'p99':>8s}  ns per call ({args.rounds} rounds)")
    for name, values in results.items():
        s = stats(values)
        print(f"{name:24s} {s['min']:8.1f} {s['median']:8.1f} {s['p99']:8.1f}")
    loop = stats(results["empty loop"])["median"]
    gen = stats(results["snapsafe.generation()"])["median"]
    bare = stats(results["bare memoryview read"])["median"]
    print(f"ratio generation()/memoryview read: {gen / bare:.2f}x as measured; "
          f"{(gen - loop) / (bare - loop):.2f}x net of the timing loop (target <= 2x)")


if __name__ == "__main__":
    main()
