"""Starting sandbox processes (CRIU restores, QEMU) that die with the orchestrator, even when it
is killed with SIGKILL.

A sandbox busy in its handler does not notice that its channel closed, so the kernel must end it:
each child sets PR_SET_PDEATHSIG (SIGKILL) between fork and exec. That signal fires when the
*thread* that forked the child exits, not the process, so every such child is forked by one
thread that lives as long as the process (restores may come from short-lived threads, e.g. a pool).
"""

from __future__ import annotations

import ctypes
import functools
import os
import queue
import signal
import subprocess
import threading
from concurrent.futures import Future
from typing import Any

_PR_SET_PDEATHSIG = 1
_prctl = ctypes.CDLL(None, use_errno=True).prctl
_requests: queue.SimpleQueue[tuple[list[str], dict[str, Any], Future[subprocess.Popen[bytes]]]] = queue.SimpleQueue()
_spawner: threading.Thread | None = None
_spawner_lock = threading.Lock()


def _die_with_parent(parent: int) -> None:  # runs in the child between fork and exec
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the orchestrator died before prctl took effect
        os._exit(1)


def _spawn_loop() -> None:
    while True:
        argv, kwargs, future = _requests.get()
        if not future.set_running_or_notify_cancel():
            continue
        try:
            preexec = functools.partial(_die_with_parent, os.getpid())
            future.set_result(subprocess.Popen(argv, preexec_fn=preexec, **kwargs))
        except BaseException as err:  # handed to the caller
            future.set_exception(err)


def spawn(argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen(argv, **kwargs)`` from the spawner thread, dying with this process."""
    global _spawner
    with _spawner_lock:
        if _spawner is None or not _spawner.is_alive():
            _spawner = threading.Thread(target=_spawn_loop, name="snapsafe-spawner", daemon=True)
            _spawner.start()
    future: Future[subprocess.Popen[bytes]] = Future()
    _requests.put((argv, kwargs, future))
    return future.result()
