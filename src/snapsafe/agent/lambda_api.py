"""The HTTP/1.1 of AWS Lambda's Runtime API, server side, without I/O (stdlib only: it runs in sandboxes).

Just what Lambda's runtime clients send: a request line, headers, and a body sized by
``Content-Length`` or sent ``chunked``; ``Expect: 100-continue`` is honoured (libcurl sends it before
large bodies). Connections stay open between requests (the C client reuses them).
"""

from __future__ import annotations

import dataclasses
import json
from http import HTTPStatus
from typing import Any

PREFIX = "/2018-06-01/runtime"
MAX_HEADERS = 64 * 1024


class HttpError(Exception):
    """The client sent something that is not HTTP/1.1 as the Runtime API uses it."""


@dataclasses.dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return self.body.decode(errors="replace")


class ServerConnection:
    """One client connection: ``feed`` bytes, take complete requests from ``next_request``."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.continue_sent = False

    def feed(self, data: bytes) -> None:
        self.buffer += data

    def next_request(self) -> tuple[Request | None, bytes]:
        """(a complete request or None, bytes to write now: a ``100 Continue``, or b"")."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEADERS:
                raise HttpError("request headers too large")
            return None, b""
        head = self.buffer[:end].decode("latin-1").split("\r\n")
        try:
            method, path, _version = head[0].split(" ", 2)
        except ValueError:
            raise HttpError(f"bad request line {head[0][:80]!r}") from None
        headers = {}
        for line in head[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise HttpError(f"bad header line {line[:80]!r}")
            headers[name.strip().lower()] = value.strip()
        start = end + 4
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body, used = _dechunk(self.buffer, start)
        else:
            size = int(headers.get("content-length", "0") or 0)
            body, used = (bytes(self.buffer[start:start + size]), start + size) if len(self.buffer) >= start + size \
                else (None, 0)
        if body is None:
            if headers.get("expect", "").lower() == "100-continue" and not self.continue_sent:
                self.continue_sent = True
                return None, b"HTTP/1.1 100 Continue\r\n\r\n"
            return None, b""
        del self.buffer[:used]
        self.continue_sent = False
        return Request(method.upper(), path.split("?", 1)[0], headers, body), b""


def _dechunk(buf: bytearray, pos: int) -> tuple[bytes | None, int]:
    body = bytearray()
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None, 0
        size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
        if len(buf) < eol + 2 + size + 2:
            return None, 0
        body += buf[eol + 2:eol + 2 + size]
        pos = eol + 2 + size + 2
        if size == 0:
            return bytes(body), pos


def response(status: int, body: bytes | Any = b"", headers: dict[str, str] | None = None) -> bytes:
    """A complete response; a non-bytes body is sent as JSON."""
    if not isinstance(body, (bytes, bytearray)):
        body = json.dumps(body).encode()
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", f"Content-Length: {len(body)}"]
    headers = {"Content-Type": "application/json", **(headers or {})}
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + bytes(body)


def route(request: Request) -> tuple[str, str]:
    """(what the request is, the request id in its path or ""). Kinds: next, response, error,
    init_error, restore_next, restore_error, snapsafe_restored, unknown."""
    path = request.path
    if not path.startswith(PREFIX + "/"):
        return "unknown", ""
    parts = path[len(PREFIX) + 1:].split("/")
    if request.method == "GET":
        if parts == ["invocation", "next"]:
            return "next", ""
        if parts == ["restore", "next"]:
            return "restore_next", ""
        if parts == ["snapsafe", "restored"]:
            return "snapsafe_restored", ""
    elif request.method == "POST":
        if len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
            return parts[2], parts[1]
        if parts == ["init", "error"]:
            return "init_error", ""
        if parts == ["restore", "error"]:
            return "restore_error", ""
    return "unknown", ""
