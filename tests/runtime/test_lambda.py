"""``--runtime lambda``: an unmodified awslambdaric function under SnapStart, through `snapsafe serve`
(boto3), `run` and `audit`, on the CRIU and VM engines."""

from __future__ import annotations

import json
import socket
import subprocess

import pytest

from tests.helpers import EXAMPLES, cli_env, new_tag, processes_with_tag, snapsafe, snapsafe_exe, wait_gone

boto3 = pytest.importorskip("boto3")
pytest.importorskip("awslambdaric")
from botocore.config import Config  # noqa: E402

CODE = str(EXAMPLES / "snapstart_lambda")
TCP_PROBLEM = "cannot dump TCP sockets"


def engine_problem(engine: str) -> str | None:
    if engine == "criu":
        from tests.engines.criu_helpers import criu_problem

        reason = criu_problem()
        return f"CRIU is unusable here: {reason}" if reason else None
    from tests.engines.test_vm import skip_reason

    return skip_reason()


def skip_if_unusable(engine: str) -> None:
    reason = engine_problem(engine)
    if reason:
        print(f"skipping: {reason}")
        pytest.skip(reason)


def skip_on_tcp_problem(error: str) -> None:
    """An unpatched CRIU cannot dump TCP sockets on Linux >= 6.16 (docs/snapstart.md)."""
    if TCP_PROBLEM in error:
        print(f"skipping: {error.strip()}")
        pytest.skip(error.strip())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`snapsafe serve HANDLER --runtime lambda` in a subprocess, checked for leftovers at close."""

    def __init__(self, engine: str, handler: str, *args: str) -> None:
        self.tag = new_tag()
        self.url = f"http://127.0.0.1:{free_port()}"
        extra = ["--accel", "tcg"] if engine == "vm" else []
        self.proc = subprocess.Popen(
            snapsafe_exe() + ["serve", handler, "--runtime", "lambda", "--code", CODE, "--engine", engine,
                              "--port", self.url.rsplit(":", 1)[1], *extra, *args],
            env=cli_env(self.tag), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.first_line = self.proc.stdout.readline()

    def failed_to_start(self) -> str:
        """The one-line error of a serve that exited, or ''."""
        if "listening on" in self.first_line:
            return ""
        self.proc.wait(60)
        return self.proc.stderr.read()

    def invoke(self, payload: dict, name: str = "function") -> tuple[dict | str, str | None]:
        client = boto3.client("lambda", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id="x",
                              aws_secret_access_key="x",
                              config=Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=120))
        res = client.invoke(FunctionName=name, Payload=json.dumps(payload).encode())
        return json.loads(res["Payload"].read()), res.get("FunctionError")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(60)
        self.proc.stdout.close()
        self.proc.stderr.close()
        assert wait_gone(self.tag, 10), f"left behind: {processes_with_tag(self.tag)}"


@pytest.fixture(scope="module", params=[pytest.param("criu", marks=pytest.mark.criu),
                                        pytest.param("vm", marks=[pytest.mark.qemu, pytest.mark.slow])])
def engine(request):
    skip_if_unusable(request.param)
    return request.param


@pytest.fixture(scope="module")
def app(engine):
    server = Server(engine, "app.handler", "--fresh", "--min-idle", "1", "--max-clones", "2")
    error = server.failed_to_start()
    if TCP_PROBLEM in error:
        server.close()
        print(f"skipping: {error.strip()}")
        pytest.skip(error.strip())
    assert not error, error
    yield server
    server.close()


def test_hooks_run_as_snapstart_runs_them_and_clones_are_unique(app, engine):
    answers = [app.invoke({"n": n}) for n in range(3 if engine == "criu" else 2)]
    assert all(error is None for _, error in answers), answers
    bodies = [body for body, _ in answers]
    for body in bodies:
        # before-snapshot ran once, before the snapshot (its count is in every clone's memory);
        # after-restore ran once in this clone, after the before-snapshot hook.
        assert body["hooks"]["before_snapshot"] == 1 and body["hooks"]["after_restore"] == 1, body
        assert body["hooks"]["restored_at"] > body["hooks"]["snapshot_taken_after"]
        assert body["initialization_type"] == "snap-start" and body["region"] == "us-east-1"
    assert len({b["init_id"] for b in bodies}) == 1  # one init, one snapshot
    assert len({b["hooks"]["clone_id"] for b in bodies}) == len(bodies)  # every clone ran its own hook
    assert len({b["random"] for b in bodies}) == len(bodies)  # snapsafe reseeded the Random made at init
    assert [b["echo"] for b in bodies] == [{"n": n} for n in range(len(bodies))]


@pytest.mark.criu
def test_handler_errors_reach_the_invoke_api_unchanged():
    skip_if_unusable("criu")
    server = Server("criu", "app.fails")
    try:
        failure = server.failed_to_start()
        skip_on_tcp_problem(failure)
        assert not failure, failure
        body, error = server.invoke({"order": 7})
        assert error == "Unhandled"
        assert body["errorType"] == "ValueError" and body["errorMessage"] == "no such order: 7"
        assert any("fails" in line for line in body["stackTrace"])
    finally:
        server.close()


def test_failing_after_restore_hook_answers_after_restore_error(engine):
    server = Server(engine, "after_fails.handler", "--min-idle", "0")
    try:
        failure = server.failed_to_start()
        skip_on_tcp_problem(failure)
        assert not failure, failure
        body, error = server.invoke({})
        assert error == "Unhandled"
        assert body["errorType"] == "Runtime.AfterRestoreError", body
        assert "database unreachable after restore" in body["errorMessage"]
    finally:
        server.close()


def test_failing_before_snapshot_hook_fails_to_initialise(engine):
    server = Server(engine, "before_fails.handler")
    try:
        error = server.failed_to_start()
        assert server.proc.returncode == 2
        lines = [line for line in error.splitlines() if line.startswith("snapsafe serve: error:")]
        assert len(lines) == 1, error
        assert "Runtime.BeforeSnapshotError: RuntimeError: cache flush failed" in lines[0]
    finally:
        server.close()


@pytest.mark.criu
@pytest.mark.parametrize("restorers", ["off", "on"])
def test_audit_shows_the_duplicate_snapstart_makes_and_snapsafe_repairs_it(restorers):
    skip_if_unusable("criu")
    extra = ["--disable-restorer", "all"] if restorers == "off" else []
    res = snapsafe("audit", "app.handler", "--runtime", "lambda", "--code", CODE, "--engine", "criu",
                   "--clones", "2", "--cold", "2", "--json", *extra, timeout=300)
    if TCP_PROBLEM in res.stderr:
        pytest.skip(res.stderr.strip())
    report = json.loads(res.stdout.splitlines()[-1])
    keys = {f["key"] for f in report["findings"]}
    assert "response:$.init_id" in keys  # made at init: a duplicate whoever restores (by design of the example)
    if restorers == "off":  # what Lambda SnapStart alone gives: every clone draws the same number
        assert "response:$.random" in keys, report["findings"]
    else:  # snapsafe, importable in the function, reseeded the Random made at init
        assert "response:$.random" not in keys, report["findings"]


def test_fork_engine_refuses_the_lambda_runtime():
    res = snapsafe("run", "app.handler", "--runtime", "lambda", "--code", CODE)
    assert res.returncode == 2
    assert "--runtime lambda needs --engine criu or --engine vm" in res.stderr


def test_handler_must_resolve_in_the_code_directory():
    res = snapsafe("run", "nosuch.handler", "--runtime", "lambda", "--code", CODE, "--engine", "criu")
    assert res.returncode == 2 and "no nosuch.py in" in res.stderr, res.stderr
    res = snapsafe("run", "app:handler", "--runtime", "lambda", "--code", CODE, "--engine", "criu")
    assert res.returncode == 2 and "must look like module.function" in res.stderr, res.stderr
