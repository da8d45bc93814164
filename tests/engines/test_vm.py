"""The VM engine under QEMU (TCG here: each boot costs seconds, so one template serves the module).

One template boots and is snapshotted to a directory; every test restores clones from it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from snapsafe import restorers
from snapsafe.engines import Options
from snapsafe.errors import UserError
from tests.helpers import EXAMPLES, TAG_VAR, TARGETS, json_lines, new_tag, processes_with_tag, snapsafe, wait_gone

pytestmark = [pytest.mark.qemu, pytest.mark.slow]

TARGET = f"{TARGETS}/vm_clones.py:handler"
KEYS = ("urandom", "uuid4", "random", "global_random", "numpy", "numpy_legacy")
USER_SPACE_KEYS = ("random", "global_random", "numpy", "numpy_legacy")


def canary(mult: int, add: int) -> bytes:
    return bytes((mult * i + add) & 0xFF for i in range(48))


def skip_reason() -> str | None:
    try:
        from snapsafe.engines.vm import VmEngine

        VmEngine(Options()).check()
    except (UserError, ImportError) as err:
        return f"VM engine unusable here: {err}"
    return None


@pytest.fixture(scope="module")
def tag():
    """QEMU inherits the environment: the tag finds every QEMU this module starts."""
    value = new_tag()
    os.environ[TAG_VAR] = value
    yield value
    del os.environ[TAG_VAR]
    assert wait_gone(value), f"QEMU processes left behind: {processes_with_tag(value)}"


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tag):
    reason = skip_reason()
    if reason:
        print(reason)
        pytest.skip(reason)
    from snapsafe.engines.vm import VmEngine

    directory = tmp_path_factory.mktemp("vm") / "snap"
    with VmEngine(Options(output=None)).start(TARGET) as template:
        with template.snapshot(str(directory)) as snap:
            timings = {**template.timings, **snap.timings}
    return directory, timings


def restore_clones(directory: Path, options: Options, count: int = 3, concurrently: bool = True):
    """Restore ``count`` clones from one RAM file (all alive together), invoke each once; their rows."""
    from snapsafe.engines.vm import VmEngine

    with VmEngine(options).open_snapshot(str(directory)) as snap:
        if concurrently:
            with ThreadPoolExecutor(count) as pool:
                clones = list(pool.map(lambda _: snap.restore(), range(count)))
        else:
            clones = [snap.restore() for _ in range(count)]
        try:
            pids = [c.pid for c in clones]
            assert all(c.machine.alive for c in clones), "all clones run at the same time"
            rows = [dict(c.invoke({}, timeout=60).payload, notes=c.notes, pid=c.pid) for c in clones]
        finally:
            for clone in clones:
                clone.close()
    assert len(set(pids)) == count
    return rows


def ram_sha256(directory: Path) -> str:
    from snapsafe.engines.vm import VmEngine

    (ram,) = VmEngine(Options()).memory_files(directory)
    digest = hashlib.sha256()
    with open(ram, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def test_three_concurrent_clones_are_unique_and_leave_the_ram_file_unchanged(saved):
    directory, _ = saved
    before = ram_sha256(directory)
    rows = restore_clones(directory, Options(output=None))
    for key in KEYS:
        values = [json.dumps(r[key]) for r in rows]
        assert len(set(values)) == 3, f"{key} repeats across clones: {values}"
    assert len({r["generation"] for r in rows}) == 3
    for row in rows:
        assert row["notes"]["kernel_entropy"] is True
        assert abs(row["time"] - time.time()) < 30, "the clone's clock was set to the host's, not the snapshot's"
        assert "vmgenid_reseed_logged" in row["notes"]
    assert ram_sha256(directory) == before, "a clone wrote to the template's RAM file"


def test_exact_clones_without_restorers_and_entropy_draw_the_same_numbers(saved):
    """Control: the clones really are copies; only the restorers and the host entropy make them differ.

    Restored one after the other: clones restored at once on a busy host see different interrupt
    timings, and the guest kernel's own draws from its CRNG (slab freelist shuffling, ...) then
    shift the os.urandom stream of one clone against the others'."""
    directory, _ = saved
    rows = restore_clones(directory, Options(output=None, host_entropy=False,
                                             disable_restorers=tuple(restorers.NAMES)), concurrently=False)
    for key in USER_SPACE_KEYS:
        values = [json.dumps(r[key]) for r in rows]
        assert len(set(values)) == 1, f"{key} differs across exact clones: {values}"
    # The guest kernel's CRNG also folds in interrupt timings, which differ between runs even
    # sequentially on a loaded host, so its values (os.urandom, uuid4) are usually, not always,
    # identical: the user-space generators above are the proof of exactness; these are reported.
    kernel = {key: len({json.dumps(r[key]) for r in rows}) for key in KEYS if key not in USER_SPACE_KEYS}
    print(f"distinct kernel-derived values across {len(rows)} exact clones: {kernel}")
    assert all(r["notes"]["kernel_entropy"] is False for r in rows)


def test_secret_is_wiped_from_the_ram_file_and_ordinary_memory_is_not(saved):
    directory, _ = saved
    from snapsafe.engines.vm import VmEngine

    (ram,) = VmEngine(Options()).memory_files(directory)
    secret, control = canary(151, 7), canary(97, 3)
    hits = {secret: 0, control: 0}
    tail = b""
    with open(ram, "rb") as f:
        while chunk := f.read(1 << 22):
            window = tail + chunk
            for needle in hits:
                hits[needle] += window.count(needle)
            tail = chunk[-47:]
    assert hits[control] >= 1, "the control canary must be in the snapshot (else the search proves nothing)"
    assert hits[secret] == 0, "the Secret reached the snapshot"


def test_killing_the_orchestrator_kills_its_qemu_processes(saved, tag):
    directory, _ = saved
    script = ("import sys, time\nfrom snapsafe.engines import Options\nfrom snapsafe.engines.vm import VmEngine\n"
              "snap = VmEngine(Options(output=None)).open_snapshot(sys.argv[1])\n"
              "clones = [snap.restore() for _ in range(2)]\n"
              "print(' '.join(str(c.pid) for c in clones), flush=True)\ntime.sleep(120)\n")
    own = new_tag()
    env = dict(os.environ, **{TAG_VAR: own})
    proc = subprocess.Popen([sys.executable, "-c", script, str(directory)], stdout=subprocess.PIPE, text=True,
                            env=env)
    try:
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert len(pids) == 2 and all(Path(f"/proc/{p}").exists() for p in pids)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert wait_gone(own), f"QEMU outlived its orchestrator: {processes_with_tag(own)}"
    finally:
        proc.kill()
        proc.wait()


def test_restore_command_through_the_cli(saved):
    directory, _ = saved
    res = snapsafe("restore", str(directory), "--clones", "2", "--json", timeout=180)
    assert res.returncode == 0, res.stderr
    rows, summary = json_lines(res.stdout)
    assert summary["engine"] == "vm" and summary["failed"] == 0
    assert len({r["result"]["urandom"] for r in rows}) == 2


def test_tampered_or_foreign_snapshots_are_refused_with_one_line(saved, tmp_path):
    directory, _ = saved
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-a", "--sparse=always", str(directory), str(copy)], check=True)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["engine_info"]["qemu_version"] = "1.0.0"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    res = snapsafe("restore", str(copy))
    assert res.returncode == 2 and "made by QEMU 1.0.0" in res.stderr and "Traceback" not in res.stderr
    with open(copy / "state", "r+b") as f:
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 1]))
    res = snapsafe("restore", str(copy))
    assert res.returncode == 2 and "state: modified" in res.stderr, res.stderr


def test_guest_that_does_not_boot_in_time_shows_its_console_and_leaves_nothing(tag):
    if skip_reason():
        pytest.skip(skip_reason())
    from snapsafe.engines.vm import VmEngine
    from snapsafe.engines.vm.engine import GuestBootTimeout

    engine = VmEngine(Options(output=None))
    engine.boot_timeout = 0.5
    before = {pid for pid, _ in processes_with_tag(tag)}
    with pytest.raises(GuestBootTimeout, match=r"did not boot within 0.5 s under tcg"):
        engine.start(f"{EXAMPLES}/hello.py:handler")
    time.sleep(0.2)
    assert {pid for pid, _ in processes_with_tag(tag)} <= before


def test_missing_qemu_and_kernel_are_one_line_errors(tmp_path):
    env = {"PATH": str(Path(sys.executable).parent), "SNAPSAFE_VM_CACHE": str(tmp_path)}
    res = snapsafe("run", "--engine", "vm", f"{EXAMPLES}/hello.py:handler", env=env)
    assert res.returncode == 2 and "qemu-system-x86_64 not found" in res.stderr, res.stderr
    if shutil.which("qemu-system-x86_64"):
        env["PATH"] = f"{Path(sys.executable).parent}:{os.path.dirname(shutil.which('qemu-system-x86_64'))}"
        res = snapsafe("run", "--engine", "vm", f"{EXAMPLES}/hello.py:handler", env=env)
        assert res.returncode == 2 and "no guest kernel in" in res.stderr, res.stderr
    res = snapsafe("doctor", env=env)
    assert "missing  vm:" in res.stdout and res.returncode == 1


def test_run_command_boots_snapshots_and_clones(tag):
    if skip_reason():
        pytest.skip(skip_reason())
    res = snapsafe("run", "--engine", "vm", f"{EXAMPLES}/hello.py:handler", "--clones", "2", "--json",
                   timeout=300)
    assert res.returncode == 0, res.stderr
    rows, summary = json_lines(res.stdout)
    assert summary["failed"] == 0 and summary["distinct_generations"]
    assert len({r["result"]["uuid4"] for r in rows}) == 2 and len({r["result"]["random"] for r in rows}) == 2
