from __future__ import annotations

import os
import select
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import snapsafe
from snapsafe import genid
from tests.conftest import run_python


def test_fresh_counter_starts_at_zero_and_is_one_page(counter):
    assert snapsafe.generation() == 0
    assert genid.path() == counter == os.environ[genid.ENV_VAR]
    assert os.path.getsize(counter) == genid.PAGE_SIZE


def test_trigger_is_max_of_min_gen_and_current_plus_one(counter):
    assert genid.trigger() == 1
    assert genid.trigger(10) == 10
    assert genid.trigger(3) == 11
    assert snapsafe.generation() == 11
    with open(counter, "rb") as f:
        assert int.from_bytes(f.read(4), "little") == 11


@pytest.mark.parametrize("bad", [-1, 2**32])
def test_trigger_rejects_values_outside_u32(counter, bad):
    with pytest.raises(ValueError, match="u32"):
        genid.trigger(bad)


def test_trigger_rejects_non_int(counter):
    with pytest.raises(TypeError, match="int"):
        genid.trigger("3")  # type: ignore[arg-type]


def test_plain_process_gets_its_own_counter_and_passes_it_to_children():
    code = textwrap.dedent("""
        import os, subprocess, sys, snapsafe
        from snapsafe import genid
        assert "SNAPSAFE_SYSGENID_PATH" not in os.environ
        print(snapsafe.generation())
        genid.trigger(5)
        child = subprocess.run([sys.executable, "-c",
            "import snapsafe, os; print(snapsafe.generation(), os.environ['SNAPSAFE_SYSGENID_PATH'])"],
            capture_output=True, text=True, check=True)
        print(child.stdout.strip(), genid.path())
    """)
    env = {k: v for k, v in os.environ.items() if k != genid.ENV_VAR}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    first, second = out.stdout.splitlines()
    assert first == "0"
    gen, child_path, parent_path = second.split()
    assert gen == "5" and child_path == parent_path
    assert not os.path.exists(parent_path), "the owner removes its counter at exit"


def test_wrong_size_counter_file_is_refused(tmp_path):
    bogus = tmp_path / "counter"
    bogus.write_bytes(b"\0" * 10)
    res = run_python("import snapsafe; snapsafe.generation()", env={genid.ENV_VAR: str(bogus)})
    assert res.returncode != 0
    assert "not a SysGenId counter file: size 10 bytes" in res.stderr


def test_missing_counter_file_is_refused(tmp_path):
    res = run_python("import snapsafe; snapsafe.generation()", env={genid.ENV_VAR: str(tmp_path / "nope")})
    assert "does not exist" in res.stderr


def test_watcher_read_timeout_zero_raises_blocking_when_up_to_date(counter):
    with genid.watcher() as w:
        with pytest.raises(BlockingIOError):
            w.read(timeout=0)
        with pytest.raises(TimeoutError):
            w.read(timeout=0.05)
        genid.trigger()
        assert w.read(timeout=0) == 1
        assert w.read() == 1, "keeps returning at once until acknowledged"
        w.ack(1)
        with pytest.raises(BlockingIOError):
            w.read(timeout=0)


def test_watcher_fileno_is_readable_only_while_outdated(counter):
    with genid.watcher() as w:
        assert select.select([w], [], [], 0)[0] == []
        genid.trigger()
        genid.trigger()
        assert select.select([w], [], [], 1)[0] == [w]
        w.ack(snapsafe.generation())
        assert select.select([w], [], [], 0)[0] == []
        genid.trigger()
        assert select.select([w], [], [], 1)[0] == [w]


def test_read_blocks_until_trigger_from_another_thread(counter):
    with genid.watcher() as w:
        threading.Timer(0.1, genid.trigger).start()
        start = time.monotonic()
        assert w.read(timeout=5) == 1
        assert time.monotonic() - start >= 0.05


def test_ack_of_stale_or_future_generation_is_refused(counter):
    with genid.watcher() as w:
        genid.trigger()
        genid.trigger()
        with pytest.raises(ValueError, match="current generation is 2"):
            w.ack(1)
        with pytest.raises(ValueError):
            w.ack(3)
        with pytest.raises(TypeError):
            w.ack("2")  # type: ignore[arg-type]
        w.ack(2)


def test_closed_watcher_refuses_use(counter):
    w = genid.watcher()
    w.close()
    w.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        w.read(0)


def test_untracked_watchers_never_block_wait_watchers(counter):
    with genid.watcher(track=False):
        genid.trigger()
        genid.wait_watchers(timeout=0)  # returns at once


def test_tracked_watcher_blocks_wait_watchers_until_ack(counter):
    with genid.watcher(track=True) as w:
        genid.wait_watchers(timeout=0)
        genid.trigger()
        with pytest.raises(TimeoutError, match=f"pid {os.getpid()} watcher"):
            genid.wait_watchers(timeout=0.05)
        threading.Timer(0.1, lambda: w.ack(w.read())).start()
        genid.wait_watchers(timeout=5)
        assert not w.outdated


def test_closed_tracked_watcher_stops_blocking(counter):
    w = genid.watcher(track=True)
    genid.trigger()
    w.close()
    genid.wait_watchers(timeout=0)


WATCHER_PROCESS = textwrap.dedent("""
    import sys, time
    from snapsafe import genid
    w = genid.watcher(track=True)
    print("ready", flush=True)
    gen = w.read(timeout=20)
    print("saw", gen, flush=True)
    time.sleep(0.3)  # repair takes a while; wait_watchers must not return before the ack
    print("acking", time.monotonic(), flush=True)
    w.ack(gen)
    sys.stdin.read()
""")


def test_cross_process_watcher_wait_watchers_returns_only_after_ack(counter):
    proc = subprocess.Popen([sys.executable, "-c", WATCHER_PROCESS], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        genid.trigger(7)
        genid.wait_watchers(timeout=20)
        done = time.monotonic()
        assert proc.stdout.readline().split() == ["saw", "7"]
        acking = proc.stdout.readline().split()
        assert acking[0] == "acking" and float(acking[1]) <= done
    finally:
        proc.stdin.close()
        proc.wait(10)


def test_watcher_of_a_dead_process_is_dropped(counter):
    res = run_python("from snapsafe import genid; import os; w = genid.watcher(track=True); os._exit(0)")
    assert res.returncode == 0
    genid.trigger()
    genid.wait_watchers(timeout=0)


def test_rebind_keeps_watcher_fileno_and_moves_state(counter):
    with genid.watcher(track=True) as w:
        fd = w.fileno()
        other = genid.create_counter(initial=41)
        try:
            genid.rebind(other)
            assert snapsafe.generation() == 41
            assert w.fileno() == fd
            assert w.outdated and select.select([w], [], [], 1)[0] == [w]
            assert genid.outdated_watchers() == [w._name]
            w.ack(41)
            genid.wait_watchers(timeout=0)
        finally:
            genid.rebind(counter)
            genid.remove_counter(other)


def test_sweep_removes_counters_of_dead_creators_that_nobody_maps(tmp_path):
    live_mapped = genid.create_counter(directory=str(tmp_path))  # ours: creator alive
    orphan = tmp_path / "snapsafe-sysgenid-999999999-0badc0de"
    orphan.write_bytes(b"\0" * genid.PAGE_SIZE)
    (tmp_path / "snapsafe-sysgenid-999999999-0badc0de.watchers").mkdir()
    orphan_clone = tmp_path / "snapsafe-sysgenid-999999999-0badc0de-clone-1-abcdef"
    orphan_clone.write_bytes(b"\0" * genid.PAGE_SIZE)
    mapped_orphan = tmp_path / "snapsafe-sysgenid-999999998-feedface"
    mapped_orphan.write_bytes(b"\0" * genid.PAGE_SIZE)
    import mmap

    with open(mapped_orphan, "r+b") as f:
        keep = mmap.mmap(f.fileno(), genid.PAGE_SIZE)
    try:
        removed = genid.sweep_stale_counters(str(tmp_path))
        assert sorted(removed) == sorted([str(orphan), str(orphan_clone)])
        assert not orphan.exists() and not (tmp_path / "snapsafe-sysgenid-999999999-0badc0de.watchers").exists()
        assert mapped_orphan.exists(), "a counter some process still maps is kept"
        assert os.path.exists(live_mapped), "a counter whose creator lives is kept"
    finally:
        keep.close()
