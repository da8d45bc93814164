"""Starting processes that die with the orchestrator, even when it is killed with SIGKILL.

A clone busy in its handler does not notice that its channel closed, so the kernel must end it:
every restore runs under ``setpriv --pdeathsig KILL`` (PR_SET_PDEATHSIG), and ``unshare
--kill-child`` passes the signal on to CRIU, the clone's namespace init. The parent-death signal
fires when the *thread* that forked the child exits, not the process, so all such children are
forked by one thread that lives as long as the process (restores may come from short-lived
threads, e.g. a thread pool).
"""

from __future__ import annotations

import queue
import shutil
import subprocess
import threading
from concurrent.futures import Future
from typing import Any

_requests: queue.SimpleQueue[tuple[list[str], dict[str, Any], Future[subprocess.Popen[bytes]]]] = queue.SimpleQueue()
_thread: threading.Thread | None = None
_lock = threading.Lock()


def _serve() -> None:
    while True:
        cmd, kwargs, result = _requests.get()
        if not result.set_running_or_notify_cancel():
            continue
        try:
            result.set_result(subprocess.Popen(cmd, **kwargs))
        except BaseException as err:  # handed to the caller
            result.set_exception(err)


def with_parent_death_signal(cmd: list[str]) -> list[str]:
    setpriv = shutil.which("setpriv") or shutil.which("setpriv", path="/usr/bin:/bin")
    if not setpriv:
        raise FileNotFoundError("setpriv (util-linux) is not installed")
    return [setpriv, "--pdeathsig", "KILL", "--", *cmd]


def spawn(cmd: list[str], **popen_kwargs: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen(cmd, ...)``, killed by the kernel when this process ends."""
    global _thread
    with _lock:
        if _thread is None:
            _thread = threading.Thread(target=_serve, name="snapsafe-criu-spawner", daemon=True)
            _thread.start()
    result: Future[subprocess.Popen[bytes]] = Future()
    _requests.put((with_parent_death_signal(cmd), popen_kwargs, result))
    return result.result()
