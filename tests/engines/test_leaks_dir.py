"""`snapsafe leaks DIR --canary HEX` on real on-disk snapshots (CRIU page images)."""

from __future__ import annotations

import json

import pytest

from tests.engines.criu_helpers import make_snapshot, require_criu
from tests.helpers import TARGETS, snapsafe

pytestmark = pytest.mark.criu

PLAIN = ("5eed" * 4) + b"plain-marker".hex()
SECRET = ("c0de" * 4) + b"secret-marker".hex()


@pytest.fixture(scope="module")
def snapshot_dir(tmp_path_factory):
    require_criu()
    return make_snapshot(tmp_path_factory.mktemp("leaks") / "snap", f"{TARGETS}/known_bytes.py:handler")


def test_ordinary_memory_is_found_in_the_page_images(snapshot_dir):
    res = snapsafe("leaks", str(snapshot_dir), "--canary", PLAIN, "--json")
    assert res.returncode == 1, res.stderr
    hits = json.loads(res.stdout)["hits"]
    assert hits and all(h["canary"] == PLAIN and "pages-" in h["file"] for h in hits)


def test_a_secret_is_not_in_the_page_images(snapshot_dir):
    res = snapsafe("leaks", str(snapshot_dir), "--canary", SECRET)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 hit(s)" in res.stdout


def test_a_directory_that_is_not_a_snapshot_is_refused():
    res = snapsafe("leaks", str(TARGETS), "--canary", PLAIN)
    assert res.returncode == 2 and "manifest.json: missing" in res.stderr
