"""A timestamp is taken at init and kept.

## What it does
Checks for the current time read in code that runs at initialisation and kept in a module global,
a class attribute, a default argument, an attribute or container, or the return value of a
function called at init: `time.time()`, `time.time_ns()`, `time.monotonic()`,
`time.perf_counter()`, `time.process_time()`, `time.clock_gettime()`, `datetime.now()`,
`datetime.utcnow()`, `datetime.today()`, `date.today()`, `time.localtime()`/`gmtime()`/`ctime()`/
`asctime()` without an argument, `time.strftime(fmt)` without a time, and the `now()`/`today()` of
`pandas.Timestamp`, `arrow` and `pendulum`.

## Why is this bad?
The snapshot freezes the value. A clone may be restored minutes or weeks later, and every clone
starts with the template's "start time": uptime, cache ages, token expiry and rate-limit windows
computed from it are wrong, and monotonic or performance counters may jump backwards, because
the clock they came from belongs to another boot of another machine.

## Example
```python
import time
from datetime import datetime

STARTED = time.monotonic()
BOOT_DAY = datetime.now().date()


def handler(event, context):
    return {"uptime": time.monotonic() - STARTED, "day": BOOT_DAY.isoformat()}
```

## Use instead
Take the time where it is needed, or reset it after every restore:
```python
import time
from datetime import datetime

import snapsafe

STARTED = time.monotonic()


@snapsafe.after_restore
def reset_clock():
    global STARTED
    STARTED = time.monotonic()


def handler(event, context):
    return {"uptime": time.monotonic() - STARTED, "day": datetime.now().date().isoformat()}
```

## Notes
A time read and dropped at init (`log.info("ready at %s", time.time())`) is not reported; nor are
comparisons (`DEADLINE_PASSED = time.time() > LIMIT` keeps a bool, though it is just as stale).
"""

from __future__ import annotations

import ast

from ..model import InitExpr, Rule
from .common import matches

_ALWAYS = frozenset(
    {
        "time.time", "time.time_ns", "time.monotonic", "time.monotonic_ns", "time.perf_counter",
        "time.perf_counter_ns", "time.process_time", "time.process_time_ns", "time.clock_gettime",
        "time.clock_gettime_ns",
        "datetime.datetime.now", "datetime.datetime.utcnow", "datetime.datetime.today", "datetime.date.today",
        "pandas.Timestamp.now", "pandas.Timestamp.utcnow", "pandas.Timestamp.today",
        "arrow.now", "arrow.utcnow", "pendulum.now", "pendulum.today",
    }
)
#: these read the clock only when called without a time
_WITHOUT_ARGS = frozenset({"time.localtime", "time.gmtime", "time.ctime", "time.asctime"})


def _reads_clock(expr: InitExpr) -> bool:
    name = expr.qualname
    if not isinstance(expr.node, ast.Call) or name is None:
        return False
    nargs = len(expr.node.args) + len(expr.node.keywords)
    if name in _WITHOUT_ARGS:
        return nargs == 0
    if name == "time.strftime":
        return nargs == 1
    return matches(name, _ALWAYS)


class TimestampAtInit(Rule):
    name = "timestamp-at-init"
    summary = "timestamp taken at init and kept"
    fix = "Read the clock in the handler, or reset the value in an @snapsafe.after_restore hook"

    def check(self, expr: InitExpr) -> str | None:
        if not (expr.kept and _reads_clock(expr)):
            return None
        return f"`{expr.display()}` is read at init and kept; every clone starts with the template's time"
