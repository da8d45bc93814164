"""``--runtime lambda``: the function runs in AWS's own runtime client, the agent plays Lambda's platform.

The agent serves the Lambda Runtime API on loopback and starts ``python -m awslambdaric
module.function`` (through a two-line boot that first lets snapsafe register its hooks, when snapsafe
is importable there) with ``AWS_LAMBDA_INITIALIZATION_TYPE=snap-start``. The runtime client imports
the handler, runs the before-snapshot hooks and calls ``GET /runtime/restore/next``: the agent leaves
that request pending, and the sandbox (agent and function process) is snapshotted right there, as
Lambda does. In each clone the agent first makes itself unique, then answers the pending request;
the runtime client runs the after-restore hooks and polls ``/runtime/invocation/next``, and only
then is the clone unique. Invocations go to the function process through that poll.

Single-threaded: everything happens in the agent's main thread, driven by the agent's messages
(no thread would survive a snapshot anyway). Stdlib only: it runs inside VMs.
"""

from __future__ import annotations

import fcntl
import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import time
from typing import Any

from snapsafe.agent import lambda_api as api
from snapsafe.agent import protocol as p

#: Started as the function process: snapsafe's hooks first (if snapsafe is importable), then the
#: runtime client exactly as ``python -m awslambdaric HANDLER`` runs it.
BOOT = """\
import runpy, sys
try:
    from snapsafe.agent import lambda_bridge
except ImportError:
    pass
else:
    lambda_bridge.install()
runpy.run_module("awslambdaric", run_name="__main__", alter_sys=True)
"""
BEFORE_SNAPSHOT_ERROR = "Runtime.BeforeSnapshotError"
AFTER_RESTORE_ERROR = "Runtime.AfterRestoreError"
EXIT_BEFORE_SNAPSHOT, EXIT_AFTER_RESTORE = 64, 65


class FunctionFailed(Exception):
    """The function process reported an error or ended; ``error_type`` is Lambda's."""

    def __init__(self, error_type: str, message: str, traceback: str = "") -> None:
        super().__init__(message)
        self.error_type = error_type
        self.traceback = traceback


def loopback_up() -> None:
    """Bring ``lo`` up (a fresh network namespace or VM guest starts with it down)."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, siocgifflags, struct.pack("16sH14x", b"lo", 0)))[1]
        if not flags & iff_up:
            fcntl.ioctl(s, siocsifflags, struct.pack("16sH14x", b"lo", flags | iff_up))


def _error_message(error: Any) -> str:
    if isinstance(error, dict):
        return f"{error.get('errorType', 'Error')}: {error.get('errorMessage', '')}"
    return str(error)


class LambdaRuntime:
    """The Runtime API server and the function process behind one agent."""

    def __init__(self, handler: str, function_name: str, memory_mb: int) -> None:
        self.handler = handler
        self.function_name = function_name or handler.rsplit(".", 1)[0].replace("/", ".").rsplit(".", 1)[-1]
        self.memory_mb = memory_mb
        self.process: subprocess.Popen[bytes] | None = None
        self.listener: socket.socket | None = None
        self.selector = selectors.DefaultSelector()
        self.connections: dict[socket.socket, api.ServerConnection] = {}
        self.pending_restore: socket.socket | None = None  # GET /restore/next, answered in clones
        self.pending_next: socket.socket | None = None  # GET /invocation/next, answered by invoke
        self.restored_info: dict[str, Any] = {}
        self.init_error: FunctionFailed | None = None

    # -- life ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the function process and wait until it is initialised (``/restore/next`` pending).
        An init error is raised; a before-snapshot hook's failure is kept for ``prepare``."""
        loopback_up()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.process = subprocess.Popen([sys.executable, "-c", BOOT, self.handler], stdin=subprocess.DEVNULL,
                                        env=self.environment(), cwd=os.getcwd())
        try:
            self.wait_for("restore_next")
        except FunctionFailed as err:
            if err.error_type != BEFORE_SNAPSHOT_ERROR:
                raise
            self.init_error = err  # init itself worked: Lambda reports this when it snapshots

    def environment(self) -> dict[str, str]:
        """What Lambda's Python runtime sets (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SNAPSAFE_SYSGENID")}
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        task_root = os.getcwd()
        assert self.listener is not None
        host, port = self.listener.getsockname()[:2]
        env.update({
            "AWS_LAMBDA_RUNTIME_API": f"{host}:{port}",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start",
            "_HANDLER": self.handler,
            "LAMBDA_TASK_ROOT": task_root,
            "LAMBDA_RUNTIME_DIR": os.path.dirname(os.path.dirname(os.__file__)),
            "AWS_LAMBDA_FUNCTION_NAME": self.function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.function_name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": time.strftime("%Y/%m/%d", time.gmtime()) + "/[$LATEST]snapsafe",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_EXECUTION_ENV": "AWS_Lambda_python{}.{}".format(*sys.version_info[:2]),
            "TZ": ":UTC",
            "PYTHONPATH": os.pathsep.join(filter(None, [task_root, os.environ.get("PYTHONPATH", "")])),
        })
        return env

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for sock in list(self.connections):
            sock.close()
        if self.listener is not None:
            self.listener.close()
        self.selector.close()

    # -- the agent's steps ----------------------------------------------------------------------
    def prepare(self) -> None:
        """Before the snapshot: the function's before-snapshot hooks ran already (before it asked
        for ``/restore/next``); report their failure now, as Lambda does when it snapshots."""
        if self.init_error is not None:
            raise self.init_error
        if self.pending_restore is None:
            raise FunctionFailed("Runtime.SnapshotError", "the function process is not waiting for a snapshot")

    def restore(self, event: p.Restored) -> None:
        """In a clone, once the agent is unique: answer ``/restore/next``, then wait until the
        function ran its after-restore hooks and polls for an invocation."""
        self.restored_info = {"clone_id": event.clone_id, "generation": event.generation,
                              "entropy": event.entropy, "disable": list(event.disable)}
        assert self.pending_restore is not None
        self._send(self.pending_restore, api.response(200, b""))
        self.pending_restore = None
        self.wait_for("next")

    def invoke(self, event: p.Invoke) -> tuple[bool, Any, dict[str, Any] | None]:
        """Hand ``event`` to the pending ``/invocation/next``; (ok, payload, Lambda's error)."""
        if self.pending_next is None:  # the runtime client has not polled again yet
            self.wait_for("next")
        assert self.pending_next is not None
        arn = event.invoked_function_arn or f"arn:aws:lambda:{os.environ.get('AWS_REGION', 'us-east-1')}:" \
                                            f"000000000000:function:{event.function_name}"
        headers = {
            "Lambda-Runtime-Aws-Request-Id": event.request_id,
            "Lambda-Runtime-Deadline-Ms": str(event.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": arn,
            "Lambda-Runtime-Trace-Id": f"Root=1-{int(time.time()):08x}-{os.urandom(12).hex()};Sampled=0",
        }
        self._send(self.pending_next, api.response(200, json.dumps(event.event).encode(), headers))
        self.pending_next = None
        kind, request = self.wait_for("response", "error", request_id=event.request_id)
        if kind == "response":
            return True, request.json(), None
        error = request.json()
        if not isinstance(error, dict):
            error = {"errorMessage": str(error), "errorType": "Unhandled"}
        error.setdefault("errorType", request.headers.get("lambda-runtime-function-error-type", "Unhandled"))
        return False, None, error

    # -- the server loop ------------------------------------------------------------------------
    def wait_for(self, *kinds: str, request_id: str = "") -> tuple[str, api.Request]:
        """Serve the Runtime API until a request of one of ``kinds`` arrives; raise
        :class:`FunctionFailed` if the function reports an init or restore error, or ends."""
        assert self.process is not None
        while True:
            for key, _mask in self.selector.select(timeout=0.05):
                if key.data == "accept":
                    sock, _ = self.listener.accept()  # type: ignore[union-attr]
                    sock.setblocking(True)
                    self.connections[sock] = api.ServerConnection()
                    self.selector.register(sock, selectors.EVENT_READ, "conn")
                    continue
                for kind, request in self._read(key.fileobj):  # type: ignore[arg-type]
                    if kind in kinds and (not request_id or self._request_id(request) == request_id):
                        return kind, request
            code = self.process.poll()
            if code is not None:
                raise self._exited(code)

    def _request_id(self, request: api.Request) -> str:
        return api.route(request)[1]

    def _read(self, sock: socket.socket) -> list[tuple[str, api.Request]]:
        try:
            data = sock.recv(1 << 16)
        except OSError:
            data = b""
        if not data:
            self._close(sock)
            return []
        conn = self.connections[sock]
        conn.feed(data)
        found = []
        while True:
            try:
                request, now = conn.next_request()
            except api.HttpError as err:
                self._send(sock, api.response(400, {"errorMessage": str(err), "errorType": "InvalidRequest"}))
                self._close(sock)
                return found
            if now:
                self._send(sock, now)
            if request is None:
                return found
            found.append((self._dispatch(sock, request), request))

    def _dispatch(self, sock: socket.socket, request: api.Request) -> str:
        kind, _request_id = api.route(request)
        accepted = api.response(202, {"status": "OK"})
        if kind == "next":
            self.pending_next = sock
        elif kind == "restore_next":
            self.pending_restore = sock
        elif kind in ("response", "error"):
            self._send(sock, accepted)
        elif kind == "init_error":
            self._send(sock, accepted)
            error = request.json()
            error_type = request.headers.get("lambda-runtime-function-error-type", "Runtime.InitError")
            raise FunctionFailed(error_type, f"{error_type}: {_error_message(error)}", _traceback(error))
        elif kind == "restore_error":
            self._send(sock, accepted)
            error = request.json()
            error_type = request.headers.get("lambda-runtime-function-error-type", AFTER_RESTORE_ERROR)
            raise FunctionFailed(error_type, f"{error_type}: {_error_message(error)}", _traceback(error))
        elif kind == "snapsafe_restored":
            self._send(sock, api.response(200, self.restored_info))
        else:
            self._send(sock, api.response(404, {"errorMessage": f"unknown endpoint {request.method} {request.path}",
                                                "errorType": "InvalidRequest"}))
        return kind

    def _send(self, sock: socket.socket, data: bytes) -> None:
        try:
            sock.sendall(data)
        except OSError:
            self._close(sock)

    def _close(self, sock: socket.socket) -> None:
        if sock in self.connections:
            self.selector.unregister(sock)
            del self.connections[sock]
        if sock is self.pending_next:
            self.pending_next = None
        sock.close()

    def _exited(self, code: int) -> FunctionFailed:
        if code == EXIT_BEFORE_SNAPSHOT:
            return FunctionFailed(BEFORE_SNAPSHOT_ERROR, "the runtime exited with status 64 in a before-snapshot hook")
        if code == EXIT_AFTER_RESTORE:
            return FunctionFailed(AFTER_RESTORE_ERROR, "the runtime exited with status 65 in an after-restore hook")
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        return FunctionFailed("Runtime.ExitError", f"RequestId: Error: Runtime exited with error: {how}")


def _traceback(error: Any) -> str:
    if isinstance(error, dict) and isinstance(error.get("stackTrace"), list):
        return "".join(str(line) for line in error["stackTrace"])
    return ""
