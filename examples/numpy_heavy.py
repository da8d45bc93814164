"""A heavy initialisation: SciPy and a 100 MB array built once, at init, before the snapshot.

    snapsafe run examples/numpy_heavy.py:handler

A cold start pays for the imports and the array every time; a clone gets them for the price of
a fork. NumPy's global generator and the one made here are reseeded in every clone.
"""

import numpy as np
import scipy.stats

TABLE = np.arange(100 * 1024 * 1024 // 8, dtype=np.float64)  # 100 MB, shared copy-on-write by clones
rng = np.random.default_rng(42)  # seeded at init: identical in every clone until snapsafe reseeds it
NORMAL = scipy.stats.norm(loc=0.0, scale=1.0)


def handler(event, context):
    n = int(event.get("n", 5)) if isinstance(event, dict) else 5
    sample = rng.standard_normal(n)
    return {
        "draws": [round(float(x), 6) for x in sample],
        "legacy_draw": float(np.random.random()),
        "p_value": float(NORMAL.sf(abs(sample.mean()))),
        "table_sum": float(TABLE[:1000].sum()),
    }
