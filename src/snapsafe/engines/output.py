"""Pumps a sandbox's stdout/stderr to a sink, one line at a time, tagged with the sandbox's id."""

from __future__ import annotations

import collections
import os
import sys
import threading
from collections.abc import Callable

#: ``sink(tag, line)`` receives each line of output without its newline.
Sink = Callable[[str, str], None]


def stderr_sink(tag: str, line: str) -> None:
    """The default sink: ``[tag] line`` on the orchestrator's stderr."""
    try:
        sys.stderr.write(f"[{tag}] {line}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


class OutputPump:
    """Reads ``fd`` until EOF in a daemon thread; keeps the last ``keep`` lines in ``lines``."""

    def __init__(self, fd: int, tag: str, sink: Sink | None, keep: int = 200) -> None:
        self.fd = fd
        self.tag = tag
        self.sink = sink
        self.lines: collections.deque[str] = collections.deque(maxlen=keep)
        self.thread = threading.Thread(target=self._run, name=f"output-{tag}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        pending = b""
        try:
            while chunk := os.read(self.fd, 65536):
                pending += chunk
                *complete, pending = pending.split(b"\n")
                for raw in complete:
                    self._emit(raw)
            if pending:
                self._emit(pending)
        except OSError:
            pass
        finally:
            os.close(self.fd)

    def _emit(self, raw: bytes) -> None:
        line = raw.decode("utf-8", "replace")
        self.lines.append(line)
        if self.sink is not None:
            self.sink(self.tag, line)

    def join(self, timeout: float = 1.0) -> None:
        self.thread.join(timeout)
