"""The hello example: state made at init, which every clone would share if snapsafe did not repair it.

    snapsafe run examples/hello.py:handler
"""

import os
import random
import tempfile
import uuid

import snapsafe

# Initialisation: runs once, in the template, before the snapshot.
rng = random.Random()  # seeded at init: every clone starts with its state; snapsafe reseeds it per clone


def handler(event, context):
    print(f"hello from generation {snapsafe.generation()}, request {context.aws_request_id[:8]}")
    return {
        "generation": snapsafe.generation(),
        "random": rng.random(),
        "uuid4": str(uuid.uuid4()),
        "uuid1": str(uuid.uuid1()),
        "tempfile": os.path.basename(tempfile.mktemp()),
        "name": event.get("name", "world") if isinstance(event, dict) else "world",
    }
