"""Child-process sides of the measurements (run as ``python -m snapsafe.bench.probes MODE TARGET``).

- ``cold``: import the target, answer one event on stdout, exit (a cold start);
- ``prefork``: import once, then per byte on stdin fork a worker that answers one event
  (a gunicorn-style preloading pool);
- ``floor``: import once (a process of the same size), then per byte on stdin fork a child that
  answers one byte: the raw ``fork()`` floor, no protocol and no uniqueness work.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time

from snapsafe.agent.context import LambdaContext
from snapsafe.agent.target import load


def _context() -> LambdaContext:
    return LambdaContext("bench", "bench", 128, "", int(time.time() * 1000) + 60000, "bench")


def answer(handler, out_fd: int) -> None:  # type: ignore[no-untyped-def]
    os.write(out_fd, (json.dumps(handler({}, _context())) + "\n").encode())


def main(mode: str, target: str) -> None:
    handler = load(target)
    if mode == "cold":
        answer(handler, 1)
        return
    gc.collect()
    gc.freeze()
    os.write(1, b"r")
    while os.read(0, 1):
        pid = os.fork()
        if pid == 0:
            if mode == "prefork":
                answer(handler, 1)
            else:
                os.write(1, b"x\n")
            os._exit(0)
        os.waitpid(pid, 0)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
