"""Imports NumPy and builds a 100 MB array at init."""

import numpy as np

TABLE = np.arange(100 * 1024 * 1024 // 8, dtype=np.float64)
TABLE[::512] *= 1.5  # touch it, so every page is really there
rng = np.random.default_rng()  # noqa: SNAP001 - reseeded per clone by the numpy restorer


def handler(event, context):
    i = int(rng.integers(0, TABLE.size - 1000))
    return {"slice_sum": float(TABLE[i : i + 1000].sum()), "draw": float(rng.random())}
