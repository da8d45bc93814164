from __future__ import annotations

import pytest

import snapsafe
from snapsafe import hooks


@pytest.fixture(autouse=True)
def clean_registries():
    import snapshot_restore_py as srp

    saved = (list(hooks._before), list(hooks._after), list(srp._before_snapshot_registry),
             list(srp._after_restore_registry))
    hooks._before.clear()
    hooks._after.clear()
    srp._before_snapshot_registry.clear()
    srp._after_restore_registry.clear()
    yield
    hooks._before[:], hooks._after[:] = saved[0], saved[1]
    srp._before_snapshot_registry[:], srp._after_restore_registry[:] = saved[2], saved[3]


def test_order_matches_lambda_and_crac(counter):
    calls = []

    @snapsafe.before_snapshot
    def b1():
        calls.append("b1")

    snapsafe.before_snapshot(calls.append, "b2")

    @snapsafe.after_restore
    def a1():
        calls.append("a1")

    snapsafe.after_restore(lambda tag, suffix="": calls.append(tag + suffix), "a2", suffix="!")
    snapsafe.prepare_snapshot()
    assert calls == ["b2", "b1"]
    calls.clear()
    snapsafe.restore_uniqueness()
    assert calls == ["a1", "a2!"]


def test_decorator_returns_the_function():
    def f():
        return 42

    assert snapsafe.before_snapshot(f) is f and snapsafe.after_restore(f) is f


def test_non_callable_is_refused():
    with pytest.raises(TypeError, match="callable"):
        snapsafe.before_snapshot(3)  # type: ignore[arg-type]


def test_snapshot_restore_py_hooks_run_in_the_same_order(counter):
    from snapshot_restore_py import register_after_restore, register_before_snapshot

    calls = []
    snapsafe.before_snapshot(calls.append, "snapsafe-before")
    register_before_snapshot(calls.append, "lambda-before-1")
    register_before_snapshot(calls.append, "lambda-before-2")
    snapsafe.after_restore(calls.append, "snapsafe-after")

    @register_after_restore
    def lambda_after():
        calls.append("lambda-after-1")

    register_after_restore(calls.append, "lambda-after-2")
    snapsafe.prepare_snapshot()
    snapsafe.restore_uniqueness()
    assert calls == ["lambda-before-2", "lambda-before-1", "snapsafe-before",
                     "snapsafe-after", "lambda-after-1", "lambda-after-2"]


def test_failing_before_snapshot_hook_stops_sequence_and_still_wipes_secrets():
    calls = []
    secret = snapsafe.Secret(b"must not reach the snapshot")
    snapsafe.before_snapshot(calls.append, "first-registered")

    @snapsafe.before_snapshot
    def broken():
        raise OSError("disk on fire")

    with pytest.raises(snapsafe.HookError) as info:
        snapsafe.prepare_snapshot()
    err = info.value
    assert err.error_type == "Runtime.BeforeSnapshotError"
    assert "broken" in err.hook_name and "disk on fire" in str(err)
    assert isinstance(err.cause, OSError)
    assert calls == [], "the sequence stops at the failing hook"
    assert secret.wiped


def test_failing_after_restore_hook_carries_lambda_error_type(counter):
    from snapshot_restore_py import register_after_restore

    def bad():
        raise ValueError("no config")

    register_after_restore(bad)
    with pytest.raises(snapsafe.HookError, match="Runtime.AfterRestoreError: after-restore hook .*bad"):
        snapsafe.restore_uniqueness()
