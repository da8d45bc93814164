"""Fork engine against a cold start and the raw fork floor, interleaved in one run.

    python benchmarks/fork_engine.py [--workloads hello,scipy] [--rounds 20]

Per round and workload, one of each, in turn:
  cold   a fresh interpreter imports and initialises the target and answers one event;
  engine snapshot.restore() + uniqueness + first answer (what a request waits for);
  floor  bare os.fork() of a process of the same size whose child answers one byte.
Targets (SPECIFICATION.md): engine <= 1.3x floor; >= 50x faster than cold on scipy;
time-to-unique < 1 ms median.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from _stats import fmt, machine, stats  # noqa: E402

from snapsafe.engines import Options, get_engine  # noqa: E402

WORKLOADS = {
    "hello": f"{ROOT}/examples/hello.py:handler",
    "scipy": f"{ROOT}/examples/numpy_heavy.py:handler",  # scipy.stats + a 100 MB array at init
}


def cold_start(target: str) -> float:
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, f"{HERE}/_cold_start.py", target, "{}"], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.readline()
    elapsed = (time.perf_counter() - start) * 1000
    proc.wait()
    return elapsed


class Floor:
    def __init__(self, target: str) -> None:
        self.proc = subprocess.Popen([sys.executable, f"{HERE}/_fork_floor.py", target], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, bufsize=0)
        assert self.proc.stdout.read(1) == b"r"  # type: ignore[union-attr]

    def once(self) -> float:
        start = time.perf_counter()
        self.proc.stdin.write(b"g")  # type: ignore[union-attr]
        self.proc.stdout.read(1)  # type: ignore[union-attr]
        return (time.perf_counter() - start) * 1000

    def close(self) -> None:
        self.proc.stdin.close()  # type: ignore[union-attr]
        self.proc.wait()


def engine_once(snapshot) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    clone = snapshot.restore()
    result = clone.invoke({}, timeout=60)
    elapsed = (time.perf_counter() - start) * 1000
    assert result.ok, result.error
    unique = clone.timings["unique_ms"]
    clone.close()
    return elapsed, unique


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="hello,scipy")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--json", metavar="FILE", help="also write the raw numbers here")
    args = parser.parse_args()
    report = {"machine": machine(), "workloads": {}}
    print(f"machine: {machine()}")
    for name in args.workloads.split(","):
        target = WORKLOADS[name]
        cold, engine, floor, unique = [], [], [], []
        fl = Floor(target)
        with get_engine("fork", Options(output=None)).start(target) as template, template.snapshot() as snap:
            for _ in range(2):  # warm both paths once
                engine_once(snap)
                fl.once()
            for _ in range(args.rounds):
                cold.append(cold_start(target))
                e, u = engine_once(snap)
                engine.append(e)
                unique.append(u)
                floor.append(fl.once())
        fl.close()
        s = {k: stats(v) for k, v in (("cold", cold), ("engine", engine), ("floor", floor), ("unique", unique))}
        report["workloads"][name] = s
        print(f"\n{name} ({target})")
        for key, label in (("cold", "cold start"), ("engine", "restore + unique + first answer"),
                           ("floor", "raw fork floor"), ("unique", "time-to-unique (in the clone)")):
            print(f"  {label:34s} {fmt(s[key])}")
        print(f"  engine / floor (medians): {s['engine']['median'] / s['floor']['median']:.2f}x (target <= 1.3x)")
        print(f"  cold / engine (medians):  {s['cold']['median'] / s['engine']['median']:.0f}x faster"
              + (" (target >= 50x)" if name == "scipy" else ""))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
