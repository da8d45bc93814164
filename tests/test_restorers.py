"""Each restorer: two clones restored from one state differ; opted-out generators stay identical."""

from __future__ import annotations

import json
import textwrap

import pytest

import snapsafe
from snapsafe import restorers
from tests.conftest import run_python

# Builds the shared state, prepares a "snapshot", forks two clones that each restore uniqueness
# (unless RESTORE is False) and print a fingerprint. The parent prints both fingerprints as JSON.
# The clones are made with libc's fork() called directly, so Python's at-fork handlers (which
# reseed the global `random`) do not run: like a CRIU or VM restore, nothing tells the clone.
CLONES = textwrap.dedent("""
    import ctypes, json, os, sys
    import multiprocessing, random, ssl, tempfile, uuid
    import numpy as np
    import snapsafe

    RESTORE = {restore}
    OFF = {off}
    module_rng = random.Random(1234)
    kept = snapsafe.keep_deterministic(random.Random(99))
    legacy = np.random.seed(7)
    gen = np.random.default_rng(5)
    kept_gen = snapsafe.keep_deterministic(np.random.default_rng(6))
    state = np.random.RandomState(3)
    uuid.uuid1()  # caches the node and the libuuid state, as an app would at init
    tempfile._get_candidate_names()
    snapsafe.generation()  # the sandbox's counter exists before the snapshot
    snapsafe.prepare_snapshot()

    def fingerprint():
        return {{
            "global_random": random.random(),
            "module_rng": module_rng.random(),
            "kept": kept.random(),
            "np_legacy": float(np.random.random()),
            "np_generator": float(gen.random()),
            "np_kept": float(kept_gen.random()),
            "np_randomstate": float(state.random_sample()),
            "uuid1_clock_seq": uuid.uuid1().clock_seq,
            "uuid1_node": uuid.uuid1().node,
            "tempfile_name": next(tempfile._get_candidate_names()),
            "mp_authkey": multiprocessing.current_process().authkey.hex(),
            "ssl_rand": ssl.RAND_bytes(8).hex(),
        }}

    outputs = []
    for _ in range(2):
        r, w = os.pipe()
        pid = ctypes.CDLL(None).fork()
        if pid == 0:
            os.close(r)
            if RESTORE:
                snapsafe.restore_uniqueness(disable=OFF)
            os.write(w, json.dumps(fingerprint()).encode())
            os._exit(0)
        os.close(w)
        data = b""
        while chunk := os.read(r, 65536):
            data += chunk
        os.waitpid(pid, 0)
        outputs.append(json.loads(data))
    print(json.dumps(outputs))
""")


def clones(restore: bool = True, off: tuple[str, ...] = ()) -> tuple[dict, dict]:
    res = run_python(CLONES.format(restore=restore, off=off))
    assert res.returncode == 0, res.stderr
    a, b = json.loads(res.stdout)
    return a, b


@pytest.fixture(scope="module")
def restored():
    return clones(restore=True)


@pytest.fixture(scope="module")
def unrestored():
    return clones(restore=False)


REPAIRED = ["global_random", "module_rng", "np_legacy", "np_generator", "np_randomstate",
            "uuid1_clock_seq", "uuid1_node", "tempfile_name", "mp_authkey"]
# tempfile notices a changed PID by itself; an exact clone (CRIU, VM) keeps the PID and shares it.
SHARED_WITHOUT_RESTORERS = [k for k in REPAIRED if k != "tempfile_name"]


@pytest.mark.parametrize("key", SHARED_WITHOUT_RESTORERS)
def test_without_restorers_clones_share_the_value(unrestored, key):
    a, b = unrestored
    assert a[key] == b[key], "control: a cloned process really does repeat this value"


@pytest.mark.parametrize("key", REPAIRED + ["ssl_rand"])
def test_restored_clones_differ(restored, key):
    a, b = restored
    assert a[key] != b[key]


@pytest.mark.parametrize("key", ["kept", "np_kept"])
def test_opted_out_generators_stay_deterministic(restored, key):
    a, b = restored
    assert a[key] == b[key]


def test_uuid_node_is_random_with_multicast_bit(restored):
    for fp in restored:
        assert fp["uuid1_node"] & (1 << 40)


def test_restorers_switch_off_by_name():
    a, b = clones(restore=True, off=("random", "numpy"))
    assert a["module_rng"] == b["module_rng"] and a["np_generator"] == b["np_generator"]
    assert a["tempfile_name"] != b["tempfile_name"]


def test_restorers_switch_off_by_environment():
    res = run_python(CLONES.format(restore=True, off=()), env={"SNAPSAFE_RESTORERS_OFF": "all"})
    a, b = json.loads(res.stdout)
    assert a["module_rng"] == b["module_rng"] and a["mp_authkey"] == b["mp_authkey"]


def test_unknown_restorer_name_is_refused(counter):
    with pytest.raises(ValueError, match="unknown restorer"):
        snapsafe.restore_uniqueness(disable=["nope"])
    with pytest.raises(ValueError, match="known: random"):
        restorers.disable("nope")


def test_shared_by_design_lists_the_hash_secret():
    names = {item["name"] for item in snapsafe.SHARED_BY_DESIGN}
    assert "hash_secret" in names
    assert all({"name", "what", "why", "advice"} <= item.keys() for item in snapsafe.SHARED_BY_DESIGN)


def test_restore_uniqueness_bumps_generation_and_reports_time(counter):
    elapsed = snapsafe.restore_uniqueness(new_generation=40)
    assert snapsafe.generation() == 40 and 0 <= elapsed < 5
    snapsafe.restore_uniqueness()
    assert snapsafe.generation() == 41
    with pytest.raises(TypeError):
        snapsafe.restore_uniqueness(entropy="abc")  # type: ignore[arg-type]
