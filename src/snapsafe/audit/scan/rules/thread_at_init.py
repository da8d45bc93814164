"""A thread or process is started at init.

## What it does
Checks for threads and processes started in code that runs at initialisation:
`threading.Thread(...).start()` (also through a variable, `self.thread.start()`, or a subclass of
`Thread` defined in the same file), `threading.Timer(...).start()`,
`multiprocessing.Process(...).start()`, `multiprocessing.Pool()`, `multiprocessing.Manager()`,
`concurrent.futures.ThreadPoolExecutor()`/`ProcessPoolExecutor()`, `subprocess.Popen()`,
`os.fork()`, `os.posix_spawn()` and `_thread.start_new_thread()`.

## Why is this bad?
A snapshot is only consistent when the sandbox is quiescent. A thread running while it is taken
is frozen at an arbitrary point (holding a lock, half way through a write) and every clone resumes
it there. Child processes are worse: a process snapshot engine must capture them too, and a VM
clone resumes them with the same state, the same PRNG and the same connections as every other
clone. Pools and executors keep such workers alive across the snapshot.

## Example
```python
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor

POOL = ThreadPoolExecutor(max_workers=4)
SIDECAR = subprocess.Popen(["./metrics-agent"])
threading.Thread(target=flush_forever, daemon=True).start()
```

## Use instead
Start workers after restore (or on first use), and stop them before the snapshot:
```python
import threading
from concurrent.futures import ThreadPoolExecutor

import snapsafe

POOL = None


@snapsafe.after_restore
def start_workers():
    global POOL
    POOL = ThreadPoolExecutor(max_workers=4)
    threading.Thread(target=flush_forever, daemon=True).start()


@snapsafe.before_snapshot
def stop_workers():
    if POOL is not None:
        POOL.shutdown(wait=True)
```

## Notes
Creating a `Thread` or `Process` object without starting it is not reported. Executors, pools and
`Popen` used in a `with` block are joined before init ends and are not reported, and neither are
`subprocess.run()`/`call()`/`check_output()`, which wait for the child.
"""

from __future__ import annotations

from ..model import InitExpr, Rule
from .common import matches

_STARTS = frozenset(
    {
        "threading.Thread().start",
        "threading.Timer().start",
        "multiprocessing.Process().start",
        "multiprocessing.context.Process().start",
        "multiprocessing.get_context().Process().start",
        "multiprocessing.Pool",
        "multiprocessing.pool.Pool",
        "multiprocessing.pool.ThreadPool",
        "multiprocessing.get_context().Pool",
        "multiprocessing.Manager",
        "concurrent.futures.ThreadPoolExecutor",
        "concurrent.futures.ProcessPoolExecutor",
        "concurrent.futures.thread.ThreadPoolExecutor",
        "concurrent.futures.process.ProcessPoolExecutor",
        "subprocess.Popen",
        "os.fork",
        "os.forkpty",
        "os.posix_spawn",
        "os.posix_spawnp",
        "_thread.start_new_thread",
        "_thread.start_new",
    }
)


class ThreadAtInit(Rule):
    name = "thread-at-init"
    summary = "thread or process started at init"
    fix = "Start it in an @snapsafe.after_restore hook (and stop it in @snapsafe.before_snapshot)"

    def check(self, expr: InitExpr) -> str | None:
        # executors, pools and Popen used as context managers are joined when the block ends
        if expr.in_with or not matches(expr.qualname, _STARTS):
            return None
        return f"`{expr.display()}` starts a thread or process at init; the snapshot freezes it mid-flight"
