from __future__ import annotations

import json
import os
import stat

import pytest

from snapsafe.engines.manifest import MANIFEST, SnapshotFormatError, load_manifest, write_snapshot_dir


def populate(tmp):
    (tmp / "pages.img").write_bytes(b"p" * 1000)
    (tmp / "sub").mkdir()
    (tmp / "sub" / "state.bin").write_bytes(b"s" * 10)
    return {"tool": "test 1.0"}


@pytest.fixture
def snap(tmp_path):
    d = tmp_path / "snap"
    write_snapshot_dir(d, "criu", "app.py:handler", populate)
    return d


def test_written_atomically_with_private_modes(snap, tmp_path):
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap"], "no partial directory is left"
    assert stat.S_IMODE(snap.stat().st_mode) == 0o700
    for p in (snap / "pages.img", snap / "sub" / "state.bin", snap / MANIFEST):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
    m = load_manifest(snap, engine="criu")
    assert m.files["pages.img"]["size"] == 1000 and m.engine_info == {"tool": "test 1.0"}
    assert m.total_bytes == 1010


def test_failed_populate_leaves_nothing(tmp_path):
    def broken(tmp):
        (tmp / "half.img").write_bytes(b"x")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        write_snapshot_dir(tmp_path / "snap", "criu", "t", broken)
    assert list(tmp_path.iterdir()) == []


def test_existing_destination_is_refused(snap):
    with pytest.raises(Exception, match="already exists"):
        write_snapshot_dir(snap, "criu", "t", populate)


@pytest.mark.parametrize("damage, reason", [
    (lambda d: (d / "pages.img").unlink(), "pages.img: missing"),
    (lambda d: (d / "pages.img").write_bytes(b"p" * 999), "truncated or grown"),
    (lambda d: (d / "pages.img").write_bytes(b"q" * 1000), "modified"),
    (lambda d: (d / "extra.img").write_bytes(b"x"), "not listed in the manifest"),
    (lambda d: (d / MANIFEST).unlink(), "missing: this is not a snapsafe snapshot"),
    (lambda d: (d / MANIFEST).write_text("{"), "unreadable manifest"),
])
def test_damage_is_refused_naming_the_file(snap, damage, reason):
    os.chmod(snap, 0o700)
    damage(snap)
    with pytest.raises(SnapshotFormatError, match=reason):
        load_manifest(snap)


@pytest.mark.parametrize("field, value, reason", [
    ("format", "something-else", "not a snapsafe snapshot manifest"),
    ("format_version", 99, "format version 99"),
    ("engine", "vm", "made by the vm engine, not criu"),
])
def test_foreign_manifests_are_refused(snap, field, value, reason):
    path = snap / MANIFEST
    data = json.loads(path.read_text())
    data[field] = value
    path.write_text(json.dumps(data))
    with pytest.raises(SnapshotFormatError, match=reason):
        load_manifest(snap, engine="criu")


def test_not_a_directory(tmp_path):
    with pytest.raises(SnapshotFormatError, match="not a snapshot directory"):
        load_manifest(tmp_path / "nope")
