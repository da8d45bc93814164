"""How long `import snapsafe` adds to interpreter start (target: under 15 ms).

    python benchmarks/import_time.py [--runs 20]

Interleaves `python -c pass` and `python -c "import snapsafe"`, reports both and the difference
of medians, plus CPython's own -X importtime figure for the snapsafe package.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _stats import fmt, machine, stats  # noqa: E402


def timed(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    bare, with_snapsafe = [], []
    for _ in range(args.runs):
        bare.append(timed("pass"))
        with_snapsafe.append(timed("import snapsafe"))
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import snapsafe"], capture_output=True,
                         text=True, check=True).stderr
    own = [int(m.group(1)) for m in re.finditer(r"\|\s+(\d+) \| snapsafe$", out, re.M)]
    print(f"machine: {machine()}")
    print(f"python -c pass:            {fmt(stats(bare))}")
    print(f"python -c 'import snapsafe': {fmt(stats(with_snapsafe))}")
    print(f"difference of medians: {stats(with_snapsafe)['median'] - stats(bare)['median']:.2f} ms (target < 15 ms)")
    if own:
        print(f"-X importtime cumulative for snapsafe: {own[-1] / 1000:.2f} ms")


if __name__ == "__main__":
    main()
