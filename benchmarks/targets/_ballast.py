"""Memory a target fills at init, so that its process is about a given size (pages really present)."""

import os


def allocate(total_mb: int) -> bytearray:
    """About ``total_mb`` MB for the whole process (the interpreter and snapsafe take about 10 MB)."""
    chunk = os.urandom(1 << 20)  # incompressible and non-zero: every page is present and dumped
    return bytearray(chunk) * max(1, total_mb - 10)
