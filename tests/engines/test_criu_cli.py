"""The CRIU engine through the console script: run, snapshot, restore, bad snapshots, signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from snapsafe.engines import Options, get_engine
from snapsafe.engines.base import CloneFailed
from snapsafe.engines.manifest import SnapshotFormatError
from tests.engines.criu_helpers import EXACT, copy_snapshot, make_snapshot, require_criu
from tests.helpers import TARGETS, cli_env, json_lines, new_tag, processes_with_tag, snapsafe, snapsafe_exe, wait_gone

pytestmark = pytest.mark.criu


@pytest.fixture(scope="module")
def snapshot_dir(tmp_path_factory):
    require_criu()
    return make_snapshot(tmp_path_factory.mktemp("criu-cli") / "exact.snap")


def one_line_error(res: subprocess.CompletedProcess[str], command: str) -> str:
    lines = [line for line in res.stderr.splitlines() if line.startswith(f"snapsafe {command}: error:")]
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr
    return lines[0]


def test_run_with_the_criu_engine():
    require_criu()
    res = snapsafe("run", EXACT, "--engine", "criu", "--clones", "3", "--json")
    assert res.returncode == 0, res.stderr
    rows, summary = json_lines(res.stdout)
    assert summary["engine"] == "criu" and summary["failed"] == 0 and summary["distinct_generations"]
    assert len({r["result"]["pid"] for r in rows}) == 1, "exact clones keep the template's PID"
    assert len({r["result"]["random"] for r in rows}) == 3


def test_snapshot_then_restore(snapshot_dir):
    res = snapsafe("restore", str(snapshot_dir), "--clones", "4", "--json")
    assert res.returncode == 0, res.stderr
    rows, summary = json_lines(res.stdout)
    assert summary["engine"] == "criu" and summary["failed"] == 0
    for key in ("random", "numpy", "uuid4", "tempfile"):
        assert len({r["result"][key] for r in rows}) == 4, key
    assert len({r["result"]["pid"] for r in rows}) == 1


def test_restore_without_restorers_gives_identical_random_values(snapshot_dir):
    res = snapsafe("restore", str(snapshot_dir), "--clones", "3", "--json", "--disable-restorer", "all")
    assert res.returncode == 0, res.stderr
    rows, _ = json_lines(res.stdout)
    assert len({r["result"]["random"] for r in rows}) == 1
    assert len({r["result"]["numpy"] for r in rows}) == 1


def test_lazy_restore_from_the_command_line(snapshot_dir):
    res = snapsafe("restore", str(snapshot_dir), "--clones", "2", "--json", "--lazy")
    assert res.returncode == 0, res.stderr
    rows, summary = json_lines(res.stdout)
    assert summary["failed"] == 0 and len({r["result"]["random"] for r in rows}) == 2


def test_snapshot_output_reports_the_directory(tmp_path):
    require_criu()
    res = snapsafe("snapshot", EXACT, "-o", str(tmp_path / "s"), "--engine", "criu")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["engine"] == "criu" and report["bytes"] > 1_000_000 and report["dump_ms"] > 0


def _edit_manifest(directory, change):
    path = directory / "manifest.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _pages(directory):
    return sorted(directory.glob("pages-*.img"))[0]


def _truncate(path):
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)


def _flip_byte(path):
    with open(path, "r+b") as f:
        f.seek(4096)
        byte = f.read(1)
        f.seek(4096)
        f.write(bytes([byte[0] ^ 0xFF]))


CORRUPTIONS = {
    "missing manifest": (lambda d: (d / "manifest.json").unlink(), "manifest.json: missing"),
    "missing image": (lambda d: _pages(d).unlink(), ".img: missing"),
    "truncated image": (lambda d: _truncate(_pages(d)), ".img: truncated or grown"),
    "modified image": (lambda d: _flip_byte(_pages(d)), ".img: modified"),
    "added file": (lambda d: (d / "extra.img").write_bytes(b"x"), "extra.img: not listed in the manifest"),
    "other format version": (lambda d: _edit_manifest(d, lambda m: m.update(format_version=99)),
                             "format version 99"),
    "other CRIU": (lambda d: _edit_manifest(d, lambda m: m["engine_info"].update(criu_version="3.17.1")),
                   "made by CRIU 3.17.1"),
    "other Python": (lambda d: _edit_manifest(d, lambda m: m.update(python="3.9.2")), "Python 3.9.2 process"),
    "malformed engine_info": (lambda d: _edit_manifest(d, lambda m: m["engine_info"].pop("channel_inode")),
                              "engine_info lacks channel_inode"),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_bad_snapshot_is_refused_before_any_restore(snapshot_dir, tmp_path, case):
    damage, expected = CORRUPTIONS[case]
    bad = copy_snapshot(snapshot_dir, tmp_path / "bad.snap")
    damage(bad)
    res = snapsafe("restore", str(bad), "--json")
    assert res.returncode == 2, res.stderr
    line = one_line_error(res, "restore")
    assert expected in line and str(bad) in line, line
    assert res.stdout == "" and "[clone-" not in res.stderr, "nothing was restored"


def test_snapshot_of_another_engine_is_refused_by_the_criu_engine(snapshot_dir, tmp_path):
    bad = copy_snapshot(snapshot_dir, tmp_path / "vm.snap")
    _edit_manifest(bad, lambda m: m.update(engine="vm"))
    with pytest.raises(SnapshotFormatError, match="made by the vm engine, not criu"):
        get_engine("criu").open_snapshot(str(bad))


def test_a_clone_that_fails_to_restore_does_not_affect_the_others(tmp_path):
    require_criu()
    data = tmp_path / "app.data"
    data.write_text("")
    engine = get_engine("criu", Options(output=None, env={"SNAPSAFE_TEST_DATA": str(data)}))
    with engine.start(f"{TARGETS}/open_file.py:handler") as template, template.snapshot() as snap:
        with snap.restore() as first:
            data.write_text("grown since the snapshot\n")
            expected = r"clone-2 did not become unique: criu restore failed: .*app.data has bad size"
            with pytest.raises(CloneFailed, match=expected):
                snap.restore()
            assert first.invoke({}, timeout=10).ok, "the running clone is unaffected"
            data.write_text("")
            with snap.restore() as third:
                assert third.invoke({}, timeout=10).ok


@pytest.mark.parametrize("sig, lazy", [(signal.SIGTERM, False), (signal.SIGINT, False), (signal.SIGKILL, False),
                                       (signal.SIGKILL, True)])
def test_signal_to_run_leaves_no_process(sig, lazy):
    require_criu()
    tag = new_tag()
    args = ["run", f"{TARGETS}/behaviours.py:handler", "--engine", "criu", "--clones", "3",
            "--event", json.dumps({"action": "sleep", "generation": 2})] + (["--lazy"] if lazy else [])
    proc = subprocess.Popen(snapsafe_exe() + args, env=cli_env(tag), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        # run, then for each of 2 clones: unshare, criu (namespace init), the clone (and lazy-pages)
        while len(processes_with_tag(tag)) < 7 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(processes_with_tag(tag)) >= 7, processes_with_tag(tag)
        os.kill(proc.pid, sig)
        proc.wait(20)
        assert wait_gone(tag, timeout=10), processes_with_tag(tag)
        if sig != signal.SIGKILL:
            assert proc.returncode != 0
        else:  # its temporary directories (a snapshot is the sandbox's memory, in RAM) go at the next start
            again = snapsafe("run", f"{TARGETS}/behaviours.py:handler", "--engine", "criu", "--clones", "1")
            assert again.returncode == 0, again.stderr
            assert not list(Path("/dev/shm").glob(f"snapsafe-criu-*-{proc.pid}-*"))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
