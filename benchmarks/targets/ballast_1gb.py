"""A target of about 1024 MB: its init fills memory, its handler answers at once (benchmarks/criu_engine.py)."""

from _ballast import allocate

BALLAST = allocate(1024)


def handler(event, context):
    return {"bytes": len(BALLAST)}
