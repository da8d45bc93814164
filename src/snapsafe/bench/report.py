"""Presenting a benchmark run: a terminal table, and PNG plots (matplotlib, the `bench` extra)."""

from __future__ import annotations

from typing import Any

TARGETS = {"fork": 1.3, "criu": 1.2, "vm": 1.3}  # restore + first answer / raw floor (SPECIFICATION.md)


def _ms(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _speedup(ratio: float) -> str:
    return f"{ratio:.0f}x" if ratio >= 10 else f"{ratio:.1f}x"


def print_tables(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    m = report["machine"]
    console.print(f"machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Linux {m['kernel']}, "
                  f"Python {m['python']}" + (f", VM accelerator {m['accelerator']}" if m.get("accelerator") else ""))
    for name, w in report["workloads"].items():
        table = Table(title=f"{name} ({w['description']}): ms to a ready first answer")
        for col in ("path", "min", "median", "p99", "/floor", "vs cold"):
            table.add_column(col, justify="left" if col == "path" else "right", no_wrap=True)
        cold = w["cold"]["median"]

        def row(label: str, s: dict[str, float], floor: str = "", speedup: bool = True,
                table: Table = table, cold: float = cold) -> None:
            table.add_row(label, _ms(s["min"]), _ms(s["median"]), _ms(s["p99"]), floor,
                          _speedup(cold / s["median"]) if speedup else "")

        row("cold start", w["cold"])
        row("forkserver (preload)", w["forkserver"])
        row("prefork pool", w["prefork"])
        for engine, e in w["engines"].items():
            ratio = e["ratio_to_floor"]
            mark = "" if ratio <= TARGETS.get(engine, 1.3) else " [red]![/red]"
            row(f"{engine} engine", e["first_answer"], f"{ratio:.2f}x{mark}")
            row(f"  {engine} raw floor", e["floor"], "1.00x", speedup=False)
            row(f"  {engine} time-to-unique", e["unique"], speedup=False)
        console.print(table)
        if any(e["memory"] for e in w["engines"].values()):
            rss = w["one_process_rss_mib"]
            mem = Table(title=f"{name}: memory (PSS, MiB); one initialised process: {rss:.0f} MiB RSS")
            for col in ("engine", "clones", "per clone", "total incl. template", "total / one process"):
                mem.add_column(col, justify="right")
            for engine, e in w["engines"].items():
                for m_ in e["memory"]:
                    if m_:
                        mem.add_row(engine, str(m_["clones"]), f"{m_['pss_per_clone_mib']:.1f}",
                                    f"{m_['total_pss_mib']:.0f}",
                                    f"{m_['total_pss_mib'] / w['one_process_rss_mib']:.2f}x")
            console.print(mem)
    g = report["generation_ns"]
    console.print("generation(): " + ", ".join(f"{k} {v['median']:.1f} ns" for k, v in g.items())
                  + f"; ratio {g['snapsafe.generation()']['median'] / g['bare memoryview read']['median']:.2f}x "
                    "(target <= 2x)")
    console.print("[red]![/red] = over the target ratio to the raw floor (fork 1.3x, criu 1.2x, vm 1.3x)")
    for what, reason in report["skipped"].items():
        console.print(f"[yellow]skipped {what}[/yellow]: {reason}")


def plot(report: dict[str, Any], path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        from snapsafe.errors import EnvironmentProblem

        raise EnvironmentProblem("--plot needs matplotlib: pip install 'snapsafe[bench]'") from None
    workloads = list(report["workloads"])
    fig, (lat, mem) = plt.subplots(1, 2, figsize=(14, 5.5))
    paths = ["forkserver", "prefork"] + sorted({e for w in report["workloads"].values() for e in w["engines"]})
    width = 0.8 / len(paths)
    for i, path_name in enumerate(paths):
        values = []
        for w in workloads:
            data = report["workloads"][w]
            s = data[path_name] if path_name in ("forkserver", "prefork") else \
                data["engines"].get(path_name, {}).get("first_answer")
            values.append(s["median"] if s else float("nan"))
        xs = [j + (i - len(paths) / 2 + 0.5) * width for j in range(len(workloads))]
        lat.bar(xs, values, width, label=path_name if path_name in ("forkserver", "prefork") else f"{path_name} engine")
    for j, w in enumerate(workloads):
        lat.hlines(report["workloads"][w]["cold"]["median"], j - 0.45, j + 0.45, colors="black", linestyles="dashed",
                   label="cold start" if j == 0 else None)
    lat.set_yscale("log")
    lat.set_xticks(range(len(workloads)), workloads)
    lat.set_ylabel("ms to a ready first answer (median, log scale)")
    lat.set_title("Latency per workload and path")
    lat.legend(fontsize=8)
    for w in workloads:
        data = report["workloads"][w]
        for engine, e in data["engines"].items():
            points = [(m["clones"], m["total_pss_mib"]) for m in e["memory"] if m]
            if points:
                mem.plot(*zip(*points, strict=True), marker="o", label=f"{w} / {engine}")
        mem.axhline(data["one_process_rss_mib"], linestyle=":", color="grey")
    mem.set_yscale("log")
    mem.set_xlabel("concurrent clones")
    mem.set_ylabel("total PSS incl. template, MiB")
    mem.set_title("Memory against clone count (dotted: one process's RSS)")
    mem.legend(fontsize=8)
    fig.suptitle(f"snapsafe bench — {report['machine']['cpu']}, {report['machine']['cores']} cores")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
