"""One benchmark run: every workload, every available engine, the alternatives, interleaved.

Per workload, everything is set up first (templates, snapshots, a forkserver, a prefork parent, the
raw floors); then each round takes one sample of each measurement in turn, so that all of them share
the machine's noise. Results are min/median/p95/p99 over the rounds.
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

from snapsafe.bench import measure
from snapsafe.bench.floors import floor_for
from snapsafe.bench.workloads import WORKLOADS
from snapsafe.engines import ENGINES, Options, get_engine

ALL_ENGINES = tuple(ENGINES)


def stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    return {"n": len(ordered), "min": ordered[0], "median": statistics.median(ordered), "p95": pct(0.95),
            "p99": pct(0.99), "max": ordered[-1]}


def machine(accel: str | None = None) -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    mem_kib = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        mem_kib = int(next(line.split()[1] for line in f if line.startswith("MemTotal:")))
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kib / 2**20, 1),
            "kernel": platform.release(), "python": platform.python_version(), "accelerator": accel}


def engine_availability(engines: tuple[str, ...]) -> dict[str, str | None]:
    """engine -> None when usable here, else the reason it is skipped."""
    result: dict[str, str | None] = {}
    for name in engines:
        try:
            get_engine(name).check()
            result[name] = None
        except Exception as err:  # every reason an engine cannot run here is a reason to skip it
            result[name] = str(err) or type(err).__name__
    return result


def vm_accelerator() -> str | None:
    try:
        from snapsafe.engines.vm.qemu import choose_accel

        accel, why = choose_accel("auto")
        return f"{accel} ({why})"
    except Exception:
        return None


Progress = Callable[[str], None]


def bench_workload(name: str, engines: list[str], runs: int, clone_counts: tuple[int, ...],
                   progress: Progress) -> dict[str, Any]:
    target, description = WORKLOADS[name]
    samples: dict[str, list[float]] = {"cold": [], "forkserver": [], "prefork": []}
    unique: dict[str, list[float]] = {}
    floors_samples: dict[str, list[float]] = {}
    memory: dict[str, list[dict[str, float]]] = {}
    one_process_rss_mib = None
    with contextlib.ExitStack() as stack:
        progress(f"{name}: starting the alternatives")
        forkserver = measure.Forkserver(target)
        stack.callback(forkserver.close)
        prefork = measure.ForkingProbe("prefork", target)
        stack.callback(prefork.close)
        one_process_rss_mib = measure.rss_kib(prefork.pid()) / 1024
        snapshots = {}
        floors = {}
        for engine in engines:
            progress(f"{name}: starting a {engine} template and snapshot")
            template = stack.enter_context(get_engine(engine, Options(output=None)).start(target))
            snapshot = stack.enter_context(template.snapshot())
            snapshots[engine] = (template, snapshot)
            floors[engine] = floor_for(engine, target, snapshot)
            stack.callback(floors[engine].close)
            samples[engine], unique[engine], floors_samples[engine] = [], [], []
            measure.engine_once(snapshot)  # warm the path once
            floors[engine].once()
        for i in range(runs):
            progress(f"{name}: round {i + 1} of {runs}")
            samples["cold"].append(measure.cold_start(target))
            samples["forkserver"].append(forkserver.once())
            samples["prefork"].append(prefork.once())
            for engine, (_template, snapshot) in snapshots.items():
                ms, unique_ms = measure.engine_once(snapshot)
                samples[engine].append(ms)
                unique[engine].append(unique_ms)
                floors_samples[engine].append(floors[engine].once())
        for engine, (template, snapshot) in snapshots.items():
            memory[engine] = []
            pid = getattr(template, "pid", None)
            for count in clone_counts:
                progress(f"{name}: memory of {count} {engine} clones")
                memory[engine].append(measure.clone_memory(snapshot, pid, count))
    result: dict[str, Any] = {"target": target, "description": description,
                              "one_process_rss_mib": one_process_rss_mib,
                              "cold": stats(samples["cold"]), "forkserver": stats(samples["forkserver"]),
                              "prefork": stats(samples["prefork"]), "engines": {}}
    cold_median = result["cold"]["median"]
    for engine in engines:
        s, f = stats(samples[engine]), stats(floors_samples[engine])
        result["engines"][engine] = {
            "first_answer": s, "floor": f, "unique": stats(unique[engine]), "memory": memory[engine],
            "ratio_to_floor": s["median"] / f["median"], "speedup_vs_cold": cold_median / s["median"],
            "vs_forkserver": result["forkserver"]["median"] / s["median"],
        }
    return result


def run(engines: tuple[str, ...], workloads: tuple[str, ...], runs: int, clone_counts: tuple[int, ...],
        progress: Progress, generation_rounds: int = 30,
        engine_workloads: dict[str, tuple[str, ...]] | None = None) -> dict[str, Any]:
    """``engine_workloads`` limits an engine to some workloads (e.g. the VM under TCG in --quick)."""
    available = engine_availability(engines)
    usable = [e for e in engines if available[e] is None]
    started = time.time()
    report: dict[str, Any] = {
        "machine": machine(vm_accelerator() if "vm" in usable else None),
        "config": {"engines": list(engines), "workloads": list(workloads), "runs": runs,
                   "clone_counts": list(clone_counts)},
        "skipped": {e: reason for e, reason in available.items() if reason},
        "workloads": {},
    }
    limits = engine_workloads or {}
    for name in workloads:
        here = [e for e in usable if name in limits.get(e, (name,))]
        for e in usable:
            if e not in here:
                report["skipped"][f"{e}/{name}"] = "left out of this run (--quick; see --help)"
        report["workloads"][name] = bench_workload(name, here, runs, clone_counts, progress)
    progress("generation() cost")
    from snapsafe.bench.gencost import measure as gencost

    report["generation_ns"] = {k: stats(v) for k, v in gencost(rounds=generation_rounds).items()}
    report["elapsed_s"] = time.time() - started
    return report
