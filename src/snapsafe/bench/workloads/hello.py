"""Standard library only."""

import json
import random
import uuid

rng = random.Random()  # noqa: SNAP001 - reseeded per clone by the random restorer, which the bench measures


def handler(event, context):
    return {"id": str(uuid.uuid4()), "n": rng.random(), "echo": json.dumps(event)[:100]}
