"""VM engine against raw QEMU restores of the same snapshot, interleaved in one run.

    python benchmarks/vm_engine.py [--target examples/hello.py:handler] [--rounds 20] [--accel auto]

Once: boot a template (cold start), snapshot it (RAM file + device state). Then per round, in turn:
  engine  snapshot.restore() + uniqueness (host entropy into the guest kernel, restorers) + first answer;
  raw     plain QEMU with the same command line, -incoming defer, migrate-incoming, cont, then the
          least the agent needs to answer: `restored` (no entropy, no restorers) and one `invoke`.
Both map the one RAM file copy-on-write (share=off). PSS: of each of 3 clones alive together.
Target (issue 7): engine within 1.3x of raw (medians).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from _stats import fmt, machine, stats  # noqa: E402

from snapsafe.bench.floors import vm_raw_once as raw_once  # noqa: E402
from snapsafe.engines import Options  # noqa: E402
from snapsafe.engines.vm import VmEngine  # noqa: E402


def engine_once(snap) -> tuple[float, dict[str, float]]:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    clone = snap.restore()
    result = clone.invoke({}, timeout=60)
    elapsed = (time.perf_counter() - start) * 1000
    assert result.ok, result.error
    timings = dict(clone.timings)
    clone.close()
    return elapsed, timings


def pss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default=f"{ROOT}/examples/hello.py:handler")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--accel", default="auto", choices=("auto", "kvm", "tcg"))
    parser.add_argument("--json", metavar="FILE", help="also write the raw numbers here")
    args = parser.parse_args()
    engine = VmEngine(Options(output=None, accel=args.accel))
    print(f"machine: {machine()}\n{engine.check()}")
    with engine.start(args.target) as template, template.snapshot() as snap:
        print(f"\n{args.target}\n  guest memory {snap.spec.memory_mb} MiB, image "
              f"{template.image.size / 2**20:.1f} MiB")
        print(f"  boot + init (cold start)           {template.timings['cold_start_ms']:.0f} ms "
              f"(image {template.timings['image_ms']:.0f} ms, boot {template.timings['boot_ms']:.0f} ms, "
              f"init {template.timings['init_ms']:.0f} ms)")
        print(f"  snapshot (prepare + stop/migrate)  {snap.timings['snapshot_ms']:.1f} ms "
              f"(VM part {snap.timings['vm_snapshot_ms']:.1f} ms)")
        engine_ms, raw_ms, restore_ms, unique_ms = [], [], [], []
        for _ in range(2):  # warm both paths (page cache of the RAM file, QEMU's binary)
            engine_once(snap)
            raw_once(snap)
        for _ in range(args.rounds):
            e, timings = engine_once(snap)
            engine_ms.append(e)
            restore_ms.append(timings["restore_ms"])
            unique_ms.append(timings["unique_ms"])
            raw_ms.append(raw_once(snap))
        with ThreadPoolExecutor(3) as pool:
            clones = list(pool.map(lambda _: snap.restore(), range(3)))
        for clone in clones:
            clone.invoke({}, timeout=60)
        pss = [pss_mb(c.pid) for c in clones]
        for clone in clones:
            clone.close()
    s = {k: stats(v) for k, v in (("engine", engine_ms), ("raw", raw_ms), ("restore", restore_ms),
                                  ("unique", unique_ms))}
    for key, label in (("engine", "restore + unique + first answer"), ("raw", "raw QEMU incoming + cont + answer"),
                       ("restore", "  of which QEMU restore to running"), ("unique", "  of which time-to-unique")):
        print(f"  {label:35s}{fmt(s[key], digits=1)}")
    ratio = s["engine"]["median"] / s["raw"]["median"]
    print(f"  engine / raw (medians): {ratio:.2f}x (target <= 1.3x)")
    print(f"  PSS per clone (3 alive): {', '.join(f'{v:.1f}' for v in pss)} MB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine(), "stats": s, "pss_mb": pss, "ratio": ratio,
                       "template": template.timings, "snapshot": snap.timings}, f, indent=2)


if __name__ == "__main__":
    main()
