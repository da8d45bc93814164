from __future__ import annotations

import copy
import os
import pickle

import pytest

import snapsafe
from snapsafe import memory


def test_secret_holds_bytes_until_wiped():
    s = snapsafe.Secret(b"hunter2")
    assert not s.wiped and s.reveal() == b"hunter2" and len(s) == 7
    s.wipe()
    assert s.wiped and len(s) == 0
    with pytest.raises(snapsafe.SecretWipedError, match="fill"):
        s.reveal()
    s.fill(b"new")
    assert s.reveal() == b"new"


def test_secret_of_size_is_empty_until_filled():
    s = snapsafe.Secret(32)
    assert s.wiped and s.capacity == 32
    s.fill(os.urandom(32))
    assert len(s.reveal()) == 32


def test_shorter_refill_does_not_leave_old_tail():
    s = snapsafe.Secret(b"abcdefgh")
    s.fill(b"xy")
    assert s.reveal() == b"xy"
    assert bytes(s._mm[8 + 2:]) == b"\0" * 6


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (-3, ValueError), (b"", ValueError),
                                      ("text", TypeError), (1.5, TypeError), (True, TypeError)])
def test_secret_rejects_bad_input(bad, exc):
    with pytest.raises(exc, match="Secret"):
        snapsafe.Secret(bad)


def test_fill_rejects_too_long_and_non_bytes():
    s = snapsafe.Secret(4)
    with pytest.raises(ValueError, match="1 to 4 bytes"):
        s.fill(b"12345")
    with pytest.raises(TypeError):
        s.fill("abcd")  # type: ignore[arg-type]


def test_secret_cannot_be_pickled_or_copied():
    s = snapsafe.Secret(b"k")
    with pytest.raises(TypeError):
        pickle.dumps(s)
    with pytest.raises(TypeError):
        copy.copy(s)
    with pytest.raises(TypeError):
        copy.deepcopy(s)
    assert "k" not in repr(s)


def test_forked_child_sees_zeros():
    s = snapsafe.Secret(b"top secret")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(w, b"%d %d" % (int(s.wiped), int(bytes(s._mm) == bytes(len(s._mm)))))
        finally:
            os._exit(0)
    os.close(w)
    answer = os.read(r, 100)
    os.waitpid(pid, 0)
    os.close(r)
    assert answer == b"1 1", "the child sees a wiped, all-zero mapping"
    assert s.reveal() == b"top secret", "the parent keeps its secret"


def test_prepare_snapshot_wipes_every_secret():
    a, b = snapsafe.Secret(b"a" * 16), snapsafe.Secret(b"b" * 16)
    snapsafe.prepare_snapshot()
    assert a.wiped and b.wiped
    assert bytes(a._mm) == bytes(len(a._mm))


def test_wipe_all_counts_live_secrets():
    keep = [snapsafe.Secret(b"x") for _ in range(3)]
    assert memory.wipe_all() >= 3
    assert all(s.wiped for s in keep)
