"""`snapsafe bench --quick` runs end to end and writes JSON of the documented shape (not a speed test)."""

from __future__ import annotations

import json

import pytest

from tests.helpers import snapsafe


@pytest.mark.slow
def test_quick_bench_json_shape(tmp_path):
    out = tmp_path / "bench.json"
    plot = tmp_path / "bench.png"
    args = ["bench", "--quick", "--workloads", "hello,numpy", "--json", str(out)]
    try:
        import matplotlib  # noqa: F401

        args += ["--plot", str(plot)]
    except ImportError:
        plot = None
    res = snapsafe(*args, timeout=600)
    assert res.returncode == 0, res.stderr
    report = json.loads(out.read_text())
    assert {"machine", "config", "skipped", "workloads", "generation_ns", "elapsed_s"} <= report.keys()
    assert {"cpu", "cores", "kernel", "python", "accelerator"} <= report["machine"].keys()
    assert report["config"]["runs"] == 3
    for name in ("hello", "numpy"):
        w = report["workloads"][name]
        for path in ("cold", "forkserver", "prefork"):
            assert {"min", "median", "p95", "p99"} <= w[path].keys() and w[path]["n"] == 3
        assert "fork" in w["engines"], "the fork engine is always available"
        for engine, e in w["engines"].items():
            assert {"first_answer", "floor", "unique", "memory", "ratio_to_floor", "speedup_vs_cold"} <= e.keys()
            assert e["first_answer"]["median"] > 0 and e["floor"]["median"] > 0
            assert [m["clones"] for m in e["memory"]] == [1, 10]
            assert all(m["total_pss_mib"] > 0 for m in e["memory"]), engine
    assert {"snapsafe.generation()", "bare memoryview read", "os.getpid()", "os.urandom(16)"} <= \
        report["generation_ns"].keys()
    for engine, reason in report["skipped"].items():
        assert reason, f"{engine} skipped without a reason"
    assert "hello (standard library only)" in res.stdout and "fork engine" in res.stdout
    if plot is not None:
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_usage_errors():
    assert snapsafe("bench", "--engines", "warp").returncode == 2
    assert snapsafe("bench", "--workloads", "nope").returncode == 2
    assert snapsafe("bench", "--runs", "1").returncode == 2


@pytest.mark.slow
def test_unavailable_engine_is_skipped_with_its_reason(tmp_path):
    out = tmp_path / "bench.json"
    res = snapsafe("bench", "--quick", "--engines", "fork,criu", "--workloads", "hello", "--clones", "1",
                   "--json", str(out), env={"SNAPSAFE_CRIU": "/nonexistent/criu"}, timeout=300)
    assert res.returncode == 0, res.stderr
    report = json.loads(out.read_text())
    assert "/nonexistent/criu" in report["skipped"]["criu"]
    assert list(report["workloads"]["hello"]["engines"]) == ["fork"]
    assert "skipped criu" in res.stdout
