"""The CRIU engine through its API: snapshots, exact clones, uniqueness, lazy restore, disk full."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from snapsafe import restorers
from snapsafe.engines import Options, get_engine
from snapsafe.engines.base import SnapshotError
from snapsafe.engines.manifest import MANIFEST, load_manifest
from tests.engines.criu_helpers import EXACT, make_snapshot, require_criu
from tests.helpers import TARGETS

pytestmark = pytest.mark.criu


@pytest.fixture(scope="module")
def snapshot_dir(tmp_path_factory):
    require_criu()
    return make_snapshot(tmp_path_factory.mktemp("criu") / "exact.snap")


def restore_concurrently(directory, count, options):
    """Restore ``count`` clones at once from one directory, invoke each once; their payloads."""
    engine = get_engine("criu", options)
    with engine.open_snapshot(str(directory)) as snap:
        with ThreadPoolExecutor(count) as pool:
            clones = list(pool.map(lambda _: snap.restore(), range(count)))
        try:
            assert len({c.id for c in clones}) == count
            return [c.invoke({}, timeout=10) for c in clones], clones
        finally:
            for clone in clones:
                clone.close()


def test_snapshot_directory_is_private_and_complete(snapshot_dir):
    manifest = load_manifest(snapshot_dir, engine="criu")
    assert manifest.target == EXACT
    info = manifest.engine_info
    assert info["criu_version"].startswith("4.") and info["python"] == manifest.python
    assert stat.S_IMODE(snapshot_dir.stat().st_mode) == 0o700
    for path in snapshot_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    memory = get_engine("criu").memory_files(snapshot_dir)
    assert memory and all(p.name.startswith("pages-") for p in memory)
    assert sum(p.stat().st_size for p in memory) == info["memory_bytes"] > 1_000_000
    assert not [p for p in snapshot_dir.parent.iterdir() if p.name.startswith(".")], "no partial directory left"


def test_four_concurrent_clones_are_exact_copies_made_unique(snapshot_dir):
    results, clones = restore_concurrently(snapshot_dir, 4, Options(output=None))
    payloads = [r.payload for r in results]
    pid = load_manifest(snapshot_dir, verify=False).engine_info["pid"]
    assert {p["pid"] for p in payloads} == {pid}, "every clone keeps the template's PID in its own namespace"
    assert len({c.generation for c in clones}) == 4
    assert [p["generation"] for p in payloads] == [c.generation for c in clones]
    for key in ("random", "numpy", "uuid4", "tempfile"):
        assert len({p[key] for p in payloads}) == 4, f"{key} repeats across clones: {payloads}"


def test_without_restorers_the_clones_are_identical(snapshot_dir):
    results, _ = restore_concurrently(snapshot_dir, 4, Options(output=None, disable_restorers=restorers.NAMES))
    payloads = [r.payload for r in results]
    for key in ("pid", "random", "numpy", "tempfile"):
        assert len({p[key] for p in payloads}) == 1, f"exact clones must agree on {key}: {payloads}"
    assert len({p["uuid4"] for p in payloads}) == 4, "uuid4 reads the kernel's RNG, which is not cloned"


def test_lazy_restore_serves_memory_on_demand(snapshot_dir):
    engine = get_engine("criu", Options(output=None, lazy_restore=True))
    with engine.open_snapshot(str(snapshot_dir)) as snap:
        with snap.restore() as first, snap.restore() as second:
            assert first.restore_process.daemon is not None, "a criu lazy-pages daemon serves the clone"
            a, b = first.invoke({}, timeout=10), second.invoke({}, timeout=10)
            assert a.ok and b.ok and a.payload["random"] != b.payload["random"]
            daemon = first.restore_process.daemon
        assert daemon.poll() is not None, "the lazy-pages daemon ends with its clone"


def test_template_snapshot_without_directory_lives_on_a_tmpfs_and_is_removed():
    require_criu()
    with get_engine("criu", Options(output=None)).start(EXACT) as template:
        with template.snapshot() as snap:
            images = snap.images
            assert os.statvfs(images).f_bsize and str(images).startswith("/dev/shm/")
            with snap.restore() as clone:
                assert clone.invoke({}, timeout=10).ok
        assert not images.exists()


def test_disk_full_leaves_nothing_and_the_template_can_dump_again(tmp_path):
    require_criu()
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(small)], check=True)
    try:
        with get_engine("criu", Options(output=None)).start(EXACT) as template:
            with pytest.raises(SnapshotError, match="no space left") as failed:
                template.snapshot(str(small / "snap"))
            assert "nothing was written" in str(failed.value)
            assert list(small.iterdir()) == [], "no partial snapshot directory"
            with template.snapshot(str(tmp_path / "snap")) as snap, snap.restore() as clone:
                assert clone.invoke({}, timeout=10).ok
        assert json.loads((tmp_path / "snap" / MANIFEST).read_text())["engine"] == "criu"
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_watchers_opened_at_init_work_in_clones_restored_from_disk(tmp_path):
    require_criu()
    directory = make_snapshot(tmp_path / "watcher.snap", f"{TARGETS}/watcher_at_init.py:handler")
    results, clones = restore_concurrently(directory, 2, Options(output=None))
    for result, clone in zip(results, clones, strict=True):
        assert result.ok, result.error
        assert result.payload == {"outdated": True, "readable": True, "generation": clone.generation}
