"""A SnapStart function for AWS's own Python runtime client: awslambdaric + snapshot_restore_py, no snapsafe.

    cd examples/snapstart_lambda && snapsafe serve app.handler --runtime lambda --engine criu

Every answer says how often each hook ran in this process, and draws from a ``random.Random()``
made at init: under SnapStart every clone starts from the same generator state, so without a
repair every clone draws the same number (``snapsafe audit app.handler --runtime lambda``).
"""

import os
import random
import time
import uuid

from snapshot_restore_py import register_after_restore, register_before_snapshot

INIT_ID = uuid.uuid4().hex  # made once, at init: the same in every clone
rng = random.Random()  # seeded at init: every clone inherits its state
hooks = {"before_snapshot": 0, "after_restore": 0, "snapshot_taken_after": 0.0, "restored_at": 0.0}


@register_before_snapshot
def close_connections():
    hooks["before_snapshot"] += 1
    hooks["snapshot_taken_after"] = time.time()


@register_after_restore
def reconnect():
    hooks["after_restore"] += 1
    hooks["restored_at"] = time.time()
    hooks["clone_id"] = uuid.uuid4().hex  # fresh: uuid4 reads the kernel's RNG


def handler(event, context):
    return {
        "init_id": INIT_ID,
        "hooks": hooks,
        "random": rng.random(),
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "memory": context.memory_limit_in_mb,
        "region": os.environ.get("AWS_REGION"),
        "initialization_type": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE"),
        "echo": event,
    }


def fails(event, context):
    raise ValueError(f"no such order: {event.get('order')}")
