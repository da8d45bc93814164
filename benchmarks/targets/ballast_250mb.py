"""A target of about 250 MB: its init fills memory, its handler answers at once (benchmarks/criu_engine.py)."""

from _ballast import allocate

BALLAST = allocate(250)


def handler(event, context):
    return {"bytes": len(BALLAST)}
