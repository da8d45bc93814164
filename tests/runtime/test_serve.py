"""`snapsafe serve` as a subprocess, invoked with boto3 and with plain HTTP."""

from __future__ import annotations

import concurrent.futures
import json
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from tests.helpers import EXAMPLES, TARGETS, cli_env, new_tag, processes_with_tag, snapsafe, snapsafe_exe, wait_gone

boto3 = pytest.importorskip("boto3")
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, target: str, *args: str) -> None:
        self.tag = new_tag()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(snapsafe_exe() + ["serve", target, "--port", str(self.port), *args],
                                     env=cli_env(self.tag), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.proc.kill()
            raise AssertionError(f"serve did not start: {line}{self.proc.stderr.read()}")

    def lambda_client(self, retries: int = 1):
        return boto3.client("lambda", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id="x",
                            aws_secret_access_key="x",
                            config=Config(retries={"max_attempts": retries, "mode": "standard"}, read_timeout=30))

    def post(self, body: bytes, name: str = "function", headers: dict | None = None):
        req = urllib.request.Request(f"{self.url}/2015-03-31/functions/{name}/invocations", data=body,
                                     headers=headers or {}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    def get(self, path: str):
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        assert wait_gone(self.tag), processes_with_tag(self.tag)
        return rc


@pytest.fixture(scope="module")
def hello():
    server = Server(f"{EXAMPLES}/hello.py:handler", "--min-idle", "2", "--max-clones", "4")
    yield server
    assert server.stop() == 0


@pytest.fixture(scope="module")
def behaviours():
    server = Server(f"{TARGETS}/behaviours.py:handler", "--timeout", "1", "--max-clones", "2")
    yield server
    assert server.stop() == 0


def test_boto3_request_response(hello):
    resp = hello.lambda_client().invoke(FunctionName="function", Payload=json.dumps({"name": "Ada"}))
    assert resp["StatusCode"] == 200 and "FunctionError" not in resp
    assert resp["ExecutedVersion"] == "$LATEST"
    assert resp["ResponseMetadata"]["RequestId"]
    body = json.loads(resp["Payload"].read())
    assert body["name"] == "Ada" and body["generation"] >= 1


@pytest.mark.parametrize("name", ["function", "hello", "arn:aws:lambda:us-east-1:000000000000:function:hello",
                                  "arn:aws:lambda:us-east-1:000000000000:function:hello:$LATEST"])
def test_function_names_that_work(hello, name):
    assert hello.lambda_client().invoke(FunctionName=name)["StatusCode"] == 200


def test_boto3_event_and_dry_run(hello):
    client = hello.lambda_client()
    assert client.invoke(FunctionName="hello", InvocationType="Event", Payload=b"{}")["StatusCode"] == 202
    assert client.invoke(FunctionName="hello", InvocationType="DryRun")["StatusCode"] == 204


def test_unknown_function_is_404(hello):
    with pytest.raises(ClientError) as info:
        hello.lambda_client().invoke(FunctionName="nope", Payload=b"{}")
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_body_that_is_not_json_is_400(hello):
    status, headers, body = hello.post(b"{not json")
    assert status == 400 and headers["x-amzn-ErrorType"] == "InvalidRequestContentException"
    with pytest.raises(ClientError) as info:
        hello.lambda_client().invoke(FunctionName="function", Payload=b"{not json")
    assert info.value.response["Error"]["Code"] == "InvalidRequestContentException"


def test_body_over_6_mb_is_413(hello):
    big = json.dumps({"blob": "x" * (6 * 1024 * 1024)}).encode()
    status, headers, body = hello.post(big)
    assert status == 413 and headers["x-amzn-ErrorType"] == "RequestEntityTooLargeException"
    assert "6291456" in json.loads(body)["message"]


def test_empty_body_is_an_empty_event(hello):
    status, headers, body = hello.post(b"")
    assert status == 200 and json.loads(body)["name"] == "world"
    assert headers["X-Amz-Executed-Version"] == "$LATEST" and headers["x-amzn-RequestId"]


def test_handler_error_is_unhandled_function_error(behaviours):
    resp = behaviours.lambda_client().invoke(FunctionName="function", Payload=json.dumps({"action": "raise"}))
    assert resp["StatusCode"] == 200 and resp["FunctionError"] == "Unhandled"
    body = json.loads(resp["Payload"].read())
    assert body["errorType"] == "ValueError" and body["errorMessage"] == "bad input from the event"
    assert isinstance(body["stackTrace"], list) and body["stackTrace"]


def test_timeout_replaces_the_clone(behaviours):
    client = behaviours.lambda_client()
    resp = client.invoke(FunctionName="function", Payload=json.dumps({"action": "sleep", "seconds": 30}))
    assert resp["FunctionError"] == "Unhandled"
    body = json.loads(resp["Payload"].read())
    assert "Task timed out after 1.00 seconds" in body["errorMessage"] and body["errorType"] == "Sandbox.Timedout"
    after = client.invoke(FunctionName="function", Payload=b"{}")
    assert "FunctionError" not in after and json.loads(after["Payload"].read())["ok"] is True


def test_crashed_clone_is_reported_and_replaced(behaviours):
    client = behaviours.lambda_client()
    resp = client.invoke(FunctionName="function", Payload=json.dumps({"action": "kill"}))
    body = json.loads(resp["Payload"].read())
    assert resp["FunctionError"] == "Unhandled" and body["errorType"] == "Runtime.ExitError"
    assert "killed by SIGKILL" in body["errorMessage"]
    assert json.loads(client.invoke(FunctionName="function")["Payload"].read())["ok"] is True


def test_more_than_max_clones_concurrent_is_429(behaviours):
    client = behaviours.lambda_client()
    client.invoke(FunctionName="function", InvocationType="DryRun")  # botocore's first call loads its models
    sleep = json.dumps({"action": "sleep", "seconds": 2})
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        slow = [pool.submit(client.invoke, FunctionName="function", Payload=sleep) for _ in range(2)]
        deadline = time.monotonic() + 10
        while json.loads(behaviours.get("/health")[1])["clones"]["busy"] < 2:  # both clones taken
            assert time.monotonic() < deadline, "the two slow invocations never ran together"
            time.sleep(0.02)
        with pytest.raises(ClientError) as info:
            client.invoke(FunctionName="function", Payload=b"{}")
        assert info.value.response["Error"]["Code"] == "TooManyRequestsException"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
        for f in slow:
            assert f.result()["StatusCode"] == 200


def test_concurrent_invocations_get_distinct_clones_and_values():
    server = Server(f"{TARGETS}/slow_unique.py:handler", "--min-idle", "4", "--max-clones", "4")
    try:
        client = server.lambda_client()
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            bodies = list(pool.map(lambda _: json.loads(client.invoke(FunctionName="function")["Payload"].read()),
                                   range(4)))
        for key in ("pid", "generation", "random", "uuid4", "request_id"):
            assert len({b[key] for b in bodies}) == 4, key
    finally:
        assert server.stop() == 0


def test_fresh_gives_every_invocation_a_new_clone():
    server = Server(f"{TARGETS}/slow_unique.py:handler", "--fresh", "--min-idle", "1", "--max-clones", "2")
    try:
        client = server.lambda_client()
        gens = [json.loads(client.invoke(FunctionName="function", Payload=b'{"sleep": 0}')["Payload"].read())
                ["generation"] for _ in range(3)]
        assert len(set(gens)) == 3
    finally:
        assert server.stop() == 0


def test_metrics_parse_and_count(hello):
    from prometheus_client.parser import text_string_to_metric_families

    hello.lambda_client().invoke(FunctionName="function")
    status, text = hello.get("/metrics")
    assert status == 200
    families = {f.name: f for f in text_string_to_metric_families(text.decode())}
    for name in ("snapsafe_invocations", "snapsafe_starts", "snapsafe_restore_seconds", "snapsafe_unique_seconds",
                 "snapsafe_invoke_seconds", "snapsafe_clones"):
        assert name in families, name
    successes = [s.value for s in families["snapsafe_invocations"].samples
                 if s.labels.get("outcome") == "success" and s.name.endswith("_total")]
    assert successes and successes[0] >= 1
    restores = [s.value for s in families["snapsafe_restore_seconds"].samples if s.name.endswith("_count")]
    assert restores[0] >= 2, "the idle clones were restored"


def test_health(hello):
    status, body = hello.get("/health")
    assert status == 200 and json.loads(body)["status"] == "ok"


def test_sigterm_finishes_in_flight_work_and_leaves_nothing():
    server = Server(f"{TARGETS}/slow_unique.py:handler", "--grace", "5")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        inflight = pool.submit(server.post, b'{"sleep": 1.0}')
        time.sleep(0.4)
        server.proc.send_signal(signal.SIGTERM)
        status, _headers, body = inflight.result(timeout=20)
    assert status == 200 and "uuid4" in json.loads(body)
    assert server.stop() == 0


def test_ctrl_c_stops_cleanly():
    server = Server(f"{EXAMPLES}/hello.py:handler")
    assert server.stop(signal.SIGINT) == 0


def test_non_loopback_bind_warns():
    server = Server(f"{EXAMPLES}/hello.py:handler", "--host", "0.0.0.0")
    try:
        assert server.stop() == 0
    finally:
        assert "reachable from other machines" in server.proc.stderr.read()


def test_port_in_use_is_one_line_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        res = snapsafe("serve", f"{EXAMPLES}/hello.py:handler", "--port", str(s.getsockname()[1]))
    assert res.returncode == 2 and "cannot listen on 127.0.0.1" in res.stderr


def test_bad_serve_options_are_usage_errors():
    assert snapsafe("serve", f"{EXAMPLES}/hello.py:handler", "--min-idle", "5", "--max-clones", "2").returncode == 2


def test_init_failure_exits_2_without_serving():
    res = snapsafe("serve", f"{TARGETS}/init_raises.py:handler", "--port", str(free_port()))
    assert res.returncode == 2 and "cannot reach the config service" in res.stderr
