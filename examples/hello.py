"""The hello example: state made at init, which every clone shares until snapsafe repairs it.

    snapsafe run examples/hello.py:handler
"""

import os
import random
import tempfile
import uuid

import snapsafe

# Initialisation: runs once, in the template, before the snapshot.
rng = random.Random()  # a generator seeded at init: every clone starts with its state
BOOT_ID = uuid.uuid4().hex[:12]  # an id made at init: every clone shares it (a real bug, shown on purpose)


def handler(event, context):
    print(f"hello from generation {snapsafe.generation()}, request {context.aws_request_id[:8]}")
    return {
        "generation": snapsafe.generation(),
        "random": rng.random(),
        "uuid4": str(uuid.uuid4()),
        "uuid1": str(uuid.uuid1()),
        "tempfile": os.path.basename(tempfile.mktemp()),
        "boot_id": BOOT_ID,
        "name": event.get("name", "world") if isinstance(event, dict) else "world",
    }
