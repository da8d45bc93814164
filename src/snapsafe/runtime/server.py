"""The AWS Lambda Invoke API over a clone pool, with /health and /metrics (aiohttp).

    POST /2015-03-31/functions/{name}/invocations   Lambda's Invoke (the name "function" always works)
    GET  /health                                     200 while the function can serve, else 503
    GET  /metrics                                    Prometheus text format

Errors that Lambda's service returns carry the ``x-amzn-ErrorType`` header and a JSON body
``{"Type": "User", "message": ...}``, which is what boto3 and the AWS CLI parse.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from snapsafe.engines.base import CloneFailed, InvokeTimeout
from snapsafe.runtime.metrics import Metrics
from snapsafe.runtime.pool import ClonePool, PoolClosed, PoolFull

MAX_PAYLOAD = 6 * 1024 * 1024  # bytes; Lambda's limit for a synchronous invocation request
INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")
ACCOUNT = "000000000000"
REGION = "us-east-1"


@dataclass
class FunctionConfig:
    name: str
    timeout: float
    max_queued_events: int = 1000


#: Restore failures caused by the function's code (its after-restore hooks), which Lambda reports as
#: function errors (200, X-Amz-Function-Error), not as service errors.
FUNCTION_RESTORE_ERRORS = frozenset({"Runtime.AfterRestoreError", "Runtime.ExitError"})


def service_error(status: int, error_type: str, message: str, request_id: str | None = None) -> web.Response:
    """An error as the Lambda service reports it (not a function error)."""
    return web.json_response({"Type": "User", "message": message}, status=status,
                             headers={"x-amzn-ErrorType": error_type,
                                      "x-amzn-RequestId": request_id or str(uuid.uuid4())})


class InvokeApi:
    def __init__(self, pool: ClonePool, config: FunctionConfig, metrics: Metrics) -> None:
        self.pool = pool
        self.config = config
        self.metrics = metrics
        self.events: set[asyncio.Task[None]] = set()  # queued Event invocations
        self.stopping = False

    # -- routing --------------------------------------------------------------------------------
    def app(self) -> web.Application:
        # The body limit is checked by hand so that an oversized request gets Lambda's 413 body.
        app = web.Application(client_max_size=MAX_PAYLOAD * 4)
        app.router.add_post("/2015-03-31/functions/{name}/invocations", self.invoke)
        app.router.add_get("/health", self.health)
        app.router.add_get("/metrics", self.metrics_page)
        return app

    def known(self, name: str) -> bool:
        """``function``, the function's name, or its ARN (a qualifier, e.g. ``:$LATEST``, allowed)."""
        if name in ("function", self.config.name):
            return True
        parts = name.split(":")
        return len(parts) in (7, 8) and parts[:3] == ["arn", "aws", "lambda"] and parts[5] == "function" \
            and parts[6] == self.config.name

    # -- endpoints ------------------------------------------------------------------------------
    async def health(self, request: web.Request) -> web.Response:
        healthy = not self.stopping and (self.pool.live > 0 or self.pool.restore_failures == 0)
        body = {"status": "ok" if healthy else "unavailable", "function": self.config.name,
                "clones": {"live": self.pool.live, "idle": self.pool.idle, "busy": self.pool.busy},
                "last_restore_error": self.pool.last_restore_error}
        return web.json_response(body, status=200 if healthy else 503)

    async def metrics_page(self, request: web.Request) -> web.Response:
        self.metrics.clones.labels(self.config.name, "live").set(self.pool.live)
        self.metrics.clones.labels(self.config.name, "idle").set(self.pool.idle)
        self.metrics.clones.labels(self.config.name, "busy").set(self.pool.busy)
        return web.Response(body=self.metrics.render(), headers={"Content-Type": self.metrics.content_type})

    async def invoke(self, request: web.Request) -> web.StreamResponse:
        request_id = str(uuid.uuid4())
        name = request.match_info["name"]
        if not self.known(name):
            return service_error(404, "ResourceNotFoundException",
                                 f"Function not found: arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}", request_id)
        invocation_type = request.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if invocation_type not in INVOCATION_TYPES:
            allowed = ", ".join(INVOCATION_TYPES)
            return service_error(400, "InvalidParameterValueException",
                                 f"Invalid invocation type {invocation_type!r}: use one of {allowed}", request_id)
        if (request.content_length or 0) > MAX_PAYLOAD:
            return self._too_large(request.content_length or 0, request_id)
        body = await request.read()
        if len(body) > MAX_PAYLOAD:
            return self._too_large(len(body), request_id)
        try:
            event = json.loads(body) if body.strip() else {}
        except (UnicodeDecodeError, ValueError) as err:
            return service_error(400, "InvalidRequestContentException",
                                 f"Could not parse request body into json: {err}", request_id)
        if self.stopping:
            return service_error(503, "ServiceException", "the function is shutting down", request_id)
        if invocation_type == "DryRun":
            return web.Response(status=204, headers=self._headers(request_id))
        if invocation_type == "Event":
            if len(self.events) >= self.config.max_queued_events:
                return service_error(429, "TooManyRequestsException", "Rate Exceeded.", request_id)
            task = asyncio.create_task(self._run_event(event, request_id))
            self.events.add(task)
            task.add_done_callback(self.events.discard)
            return web.Response(status=202, headers=self._headers(request_id))
        return await self._run_sync(event, request_id)

    # -- helpers --------------------------------------------------------------------------------
    def _headers(self, request_id: str) -> dict[str, str]:
        return {"x-amzn-RequestId": request_id, "X-Amz-Executed-Version": "$LATEST"}

    def _too_large(self, size: int, request_id: str) -> web.Response:
        return service_error(413, "RequestEntityTooLargeException",
                             f"Request must be smaller than {MAX_PAYLOAD} bytes for the InvokeFunction operation "
                             f"(got {size})", request_id)

    async def _call(self, event: Any, request_id: str) -> tuple[bool, Any]:
        """Run one invocation on a pooled clone: (ok, payload or Lambda error). PoolFull propagates."""
        name = self.config.name
        lease = await self.pool.acquire()
        self.metrics.starts.labels(name, "cold" if lease.cold else "warm").inc()
        start = time.perf_counter()
        try:
            result = await self.pool.invoke(lease, event, self.config.timeout, request_id)
        except CloneFailed as err:
            error: dict[str, Any] = {"errorMessage": str(err), "errorType": err.error_type}
            if isinstance(err, InvokeTimeout):
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
                error["errorMessage"] = f"{stamp}Z {request_id} {err}"
            self.metrics.invocations.labels(name, "timeout" if isinstance(err, InvokeTimeout) else "crash").inc()
            self.metrics.errors.labels(name, err.error_type).inc()
            return False, error
        finally:
            self.metrics.invoke_seconds.labels(name).observe(time.perf_counter() - start)
            await self.pool.release(lease)
        if result.ok:
            self.metrics.invocations.labels(name, "success").inc()
            return True, result.payload
        error_type = (result.error or {}).get("errorType", "Unhandled")
        self.metrics.invocations.labels(name, "error").inc()
        self.metrics.errors.labels(name, error_type).inc()
        return False, result.error

    async def _run_sync(self, event: Any, request_id: str) -> web.Response:
        try:
            ok, payload = await self._call(event, request_id)
        except PoolFull:
            self.metrics.invocations.labels(self.config.name, "throttled").inc()
            return service_error(429, "TooManyRequestsException", "Rate Exceeded.", request_id)
        except PoolClosed as err:
            return service_error(503, "ServiceException", str(err), request_id)
        except CloneFailed as err:  # a restore failed
            self.metrics.errors.labels(self.config.name, err.error_type).inc()
            if err.error_type in FUNCTION_RESTORE_ERRORS:  # the function's own code failed: a function error
                return web.Response(body=json.dumps({"errorType": err.error_type, "errorMessage": str(err)}).encode(),
                                    status=200, content_type="application/json",
                                    headers={**self._headers(request_id), "X-Amz-Function-Error": "Unhandled"})
            return service_error(502, "ServiceException", f"could not restore a clone: {err}", request_id)
        headers = self._headers(request_id)
        if not ok:
            headers["X-Amz-Function-Error"] = "Unhandled"
        return web.Response(body=json.dumps(payload).encode(), status=200, headers=headers,
                            content_type="application/json")

    async def _run_event(self, event: Any, request_id: str) -> None:
        """An asynchronous invocation: wait for capacity (as Lambda's queue does), then run once."""
        delay = 0.01
        while not self.pool._closed:
            try:
                await self._call(event, request_id)
                return
            except PoolFull:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
            except (PoolClosed, CloneFailed):
                return

    async def drain(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for queued Event invocations, then cancel the rest."""
        self.stopping = True
        if self.events:
            _done, pending = await asyncio.wait(set(self.events), timeout=grace)
            for task in pending:
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*pending, return_exceptions=True)
