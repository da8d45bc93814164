"""A function written for AWS Lambda SnapStart: only snapshot_restore_py hooks, no snapsafe import.

    snapsafe run examples/snapstart.py:handler

The same file deploys unchanged to Lambda with SnapStart. snapsafe runs its hooks in Lambda's
order: before-snapshot hooks last-registered first, after-restore hooks first-registered first.
"""

import os
import time

from snapshot_restore_py import register_after_restore, register_before_snapshot

EVENTS = []  # what ran, in order, as this environment sees it
CONNECTION = {"open": True, "id": os.urandom(4).hex()}  # stands in for a connection opened at init


@register_before_snapshot
def close_connection():
    EVENTS.append("before:close_connection")
    CONNECTION["open"] = False


@register_before_snapshot
def flush_cache():
    EVENTS.append("before:flush_cache")  # registered last, so it runs first


@register_after_restore
def reconnect():
    EVENTS.append("after:reconnect")
    CONNECTION.update(open=True, id=os.urandom(4).hex())


def log_restore(tag):
    EVENTS.append(f"after:{tag}")


register_after_restore(log_restore, "log")


def handler(event, context):
    return {
        "hooks": list(EVENTS),
        "connection": dict(CONNECTION),
        "remaining_ms": context.get_remaining_time_in_millis(),
        "request_id": context.aws_request_id,
        "time": time.time(),
    }
