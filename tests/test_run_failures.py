"""Failure handling of `snapsafe run`: one clear line, the right exit code, nothing left running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.helpers import EXAMPLES, TARGETS, cli_env, json_lines, new_tag, snapsafe, snapsafe_exe, wait_gone


def one_line_error(res: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in res.stderr.splitlines() if line.startswith("snapsafe run: error:")]
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr
    return lines[0]


@pytest.mark.parametrize("target, expected", [
    ("nope/missing.py:handler", "file nope/missing.py does not exist"),
    ("no_such_module_xyz:handler", "module no_such_module_xyz cannot be found"),
    (f"{TARGETS}/syntax_error.py:handler", "syntax error"),
    (f"{TARGETS}/import_error.py:handler", "No module named 'a_module_that_does_not_exist'"),
    (f"{TARGETS}/init_raises.py:handler", "RuntimeError: cannot reach the config service"),
    (f"{TARGETS}/not_callable.py:handler", "is a dict, not a function"),
    (f"{TARGETS}/behaviours.py:nothing_here", "has no attribute 'nothing_here'"),
    ("examples/hello.py", "must look like path/to/file.py:function"),
])
def test_bad_targets_exit_2_with_one_line(target, expected):
    res = snapsafe("run", target)
    assert res.returncode == 2, res.stderr
    assert expected in one_line_error(res)


def test_verbose_shows_the_init_traceback():
    res = snapsafe("--verbose", "run", f"{TARGETS}/init_raises.py:handler")
    assert res.returncode == 2
    assert "Traceback" in res.stderr and "init_raises.py" in res.stderr


@pytest.mark.parametrize("event, expected", [
    ("{not json", "--event is not valid JSON"),
    ("@/no/such/event.json", "cannot read the event file"),
])
def test_bad_event_is_a_usage_error(event, expected):
    res = snapsafe("run", f"{EXAMPLES}/hello.py:handler", "--event", event)
    assert res.returncode == 2
    assert expected in one_line_error(res)


def test_bad_options_are_usage_errors():
    assert snapsafe("run", f"{EXAMPLES}/hello.py:handler", "--clones", "0").returncode == 2
    assert snapsafe("run", f"{EXAMPLES}/hello.py:handler", "--disable-restorer", "bogus").returncode == 2
    assert snapsafe("run", f"{EXAMPLES}/hello.py:handler", "--engine", "warp").returncode == 2


def test_handler_error_is_lambda_shaped_and_clone_keeps_serving():
    res = snapsafe("run", f"{TARGETS}/behaviours.py:handler", "--clones", "2", "--json",
                   "--event", json.dumps({"action": "raise"}))
    assert res.returncode == 1
    rows, summary = json_lines(res.stdout)
    assert summary["failed"] == 2
    err = rows[0]["error"]
    assert err["errorType"] == "ValueError" and err["errorMessage"] == "bad input from the event"
    assert any("behaviours.py" in frame for frame in err["stackTrace"])


def test_handler_error_then_success_on_the_same_clone():
    from snapsafe.engines import Options, get_engine

    with get_engine("fork", Options(output=None)).start(f"{TARGETS}/behaviours.py:handler") as template, \
            template.snapshot() as snapshot, snapshot.restore() as clone:
        failed = clone.invoke({"action": "raise"}, timeout=10)
        assert not failed.ok and failed.error["errorType"] == "ValueError"
        ok = clone.invoke({}, timeout=10)
        assert ok.ok and ok.payload["ok"] is True


@pytest.mark.parametrize("event, error_type, message", [
    ({"action": "kill", "generation": 2}, "Runtime.ExitError", "killed by SIGKILL"),
    ({"action": "exit", "generation": 2}, "Runtime.ExitError", "exited with code 7"),
    ({"action": "sleep", "generation": 2}, "Sandbox.Timedout", "Task timed out after 1.00 seconds"),
    ({"action": "unserialisable", "generation": 2}, "Runtime.MarshalError", "Unable to marshal response"),
])
def test_one_failing_clone_does_not_affect_the_others(event, error_type, message):
    res = snapsafe("run", f"{TARGETS}/behaviours.py:handler", "--clones", "3", "--json", "--timeout", "1",
                   "--event", json.dumps(event))
    assert res.returncode == 1, res.stderr
    rows, summary = json_lines(res.stdout)
    assert summary["failed"] == 1
    bad = [r for r in rows if r["error"]]
    assert [r["clone"] for r in bad] == ["clone-2"]
    assert bad[0]["error"]["errorType"] == error_type and message in bad[0]["error"]["errorMessage"]
    assert all(r["result"]["ok"] for r in rows if not r["error"])


def test_threads_started_at_init_are_named():
    res = snapsafe("run", f"{TARGETS}/thread_at_init.py:handler")
    assert res.returncode == 2
    assert "'metrics-flusher'" in one_line_error(res)
    res = snapsafe("run", f"{TARGETS}/thread_at_init.py:handler", "--allow-threads", "--json", "--clones", "1")
    assert res.returncode == 0
    rows, _ = json_lines(res.stdout)
    assert rows[0]["result"]["threads"] == 1, "the thread does not exist in the clone"


@pytest.mark.parametrize("which, error_type", [("before", "Runtime.BeforeSnapshotError"),
                                               ("after", "Runtime.AfterRestoreError")])
def test_failing_hooks_surface_with_lambda_error_types(which, error_type):
    res = snapsafe("run", f"{TARGETS}/failing_hooks.py:handler", "--json", "--clones", "2",
                   env={"FAIL_HOOK": which})
    if which == "before":
        assert res.returncode == 2
        assert error_type in one_line_error(res)
    else:
        assert res.returncode == 1
        rows, _ = json_lines(res.stdout)
        assert all(r["error"]["errorType"] == error_type for r in rows)
        assert "cannot reconnect" in rows[0]["error"]["errorMessage"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_signal_to_run_leaves_no_process(sig):
    tag = new_tag()
    proc = subprocess.Popen(snapsafe_exe() + ["run", f"{TARGETS}/behaviours.py:handler", "--clones", "3",
                                              "--event", json.dumps({"action": "sleep", "generation": 2})],
                            env=cli_env(tag), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        from tests.helpers import processes_with_tag

        deadline = time.monotonic() + 30
        while len(processes_with_tag(tag)) < 4 and time.monotonic() < deadline:  # run, template, 2 clones
            time.sleep(0.05)
        assert len(processes_with_tag(tag)) >= 4
        os.kill(proc.pid, sig)
        proc.wait(20)
        assert wait_gone(tag, timeout=10), processes_with_tag(tag)
        if sig != signal.SIGKILL:
            assert proc.returncode != 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
