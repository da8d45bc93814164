"""CRIU engine against raw CRIU restores of the same image, interleaved in one run.

    python benchmarks/criu_engine.py [--sizes 40mb,250mb,1gb] [--rounds 10] [--json FILE]   (as root)

Per size, a template of that size (benchmarks/targets/ballast_*.py) is dumped ``--dumps`` times
(each from a fresh template: a dumped template is gone) into a tmpfs, as ``template.snapshot()``
does. Then, per round and in a rotating order, one of each from the last image:
  engine        snapshot.restore() + uniqueness + first answer, as `snapsafe run` does it;
  raw           `unshare -p -f --mount-proc criu restore` of the same image with the same
                --inherit-fd arguments, driven by hand: pre-encoded `restored` and `invoke` frames
                on a bare socket, timed until the answer's bytes arrive (no snapsafe code on the host);
  engine-lazy / raw-lazy   the same with `criu lazy-pages` (its start is counted in both).
Targets (docs/criu.md): engine within 1.2x of raw CRIU; lazy first answer under 40 ms at 1 GB.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _stats import fmt, machine, stats  # noqa: E402

from snapsafe.bench.floors import criu_raw_once as raw_once  # noqa: E402
from snapsafe.engines import Options, get_engine  # noqa: E402
from snapsafe.engines.criu.binary import find_criu  # noqa: E402
from snapsafe.engines.criu.snapshot import CriuSnapshot  # noqa: E402

SIZES = {"40mb": "ballast_40mb.py", "250mb": "ballast_250mb.py", "1gb": "ballast_1gb.py"}
KINDS = ("engine", "raw", "engine-lazy", "raw-lazy")


def engine_once(snapshot: CriuSnapshot, lazy: bool) -> float:
    start = time.perf_counter()
    clone = snapshot.restore(lazy=lazy)
    result = clone.invoke({}, timeout=60)
    elapsed = (time.perf_counter() - start) * 1000
    assert result.ok, result.error
    clone.close()
    return elapsed


def measure(size: str, rounds: int, dumps: int) -> dict:
    target = f"{HERE}/targets/{SIZES[size]}:handler"
    engine = get_engine("criu", Options(output=None, init_timeout=600))
    dump_ms, snapshot_bytes = [], 0
    for n in range(dumps):
        template = engine.start(target)
        snapshot = template.snapshot()
        dump_ms.append(snapshot.timings["dump_ms"])
        snapshot_bytes = sum(f.stat().st_size for f in snapshot.images.iterdir())
        if n < dumps - 1:
            snapshot.close()
            template.close()
    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    workdir = Path(tempfile.mkdtemp(prefix="criu-bench-raw-", dir="/dev/shm"))
    try:
        for r in range(rounds):
            order = KINDS[r % len(KINDS):] + KINDS[:r % len(KINDS)]  # rotate: no kind always runs first
            for kind in order:
                lazy = kind.endswith("lazy")
                if kind.startswith("engine"):
                    times[kind].append(engine_once(snapshot, lazy))
                else:
                    times[kind].append(raw_once(snapshot, lazy, workdir / "w"))
                time.sleep(0.05)  # let the last clone's memory go before the next measurement
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        snapshot.close()
        template.close()
    result = {"target": target, "dump_ms": stats(dump_ms), "image_bytes": snapshot_bytes,
              "memory_bytes": snapshot.info["memory_bytes"], **{k: stats(v) for k, v in times.items()}}
    result["ratio_eager"] = result["engine"]["median"] / result["raw"]["median"]
    result["ratio_lazy"] = result["engine-lazy"]["median"] / result["raw-lazy"]["median"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="40mb,250mb,1gb")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--dumps", type=int, default=3)
    parser.add_argument("--json", metavar="FILE", help="also write the raw numbers here")
    args = parser.parse_args()
    criu = find_criu()
    report = {"machine": machine(), "criu": criu.version, "sizes": {}}
    print(f"machine: {machine()}; CRIU {criu.version}; images and CRIU's kernel-feature cache on tmpfs")
    for size in args.sizes.split(","):
        res = measure(size, args.rounds, args.dumps)
        report["sizes"][size] = res
        print(f"\n{size}: image {res['image_bytes'] / 1e6:.1f} MB (pages {res['memory_bytes'] / 1e6:.1f} MB)")
        print(f"  dump                     {fmt(res['dump_ms'], digits=1)}")
        print("  restore + first answer")
        for kind in KINDS:
            print(f"    {kind:<12}           {fmt(res[kind], digits=1)}")
        print(f"  engine / raw (medians)   eager {res['ratio_eager']:.2f}x, lazy {res['ratio_lazy']:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
