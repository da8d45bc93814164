"""snapsafe: restore uniqueness in snapshot clones.

The in-sandbox API. It imports no third-party package and nothing from the host side.

    import snapsafe

    snapsafe.generation()            # this sandbox's generation: one memory read
    key = snapsafe.Secret(32)        # wiped before every snapshot and in forked clones

    @snapsafe.after_restore
    def refill():
        key.fill(os.urandom(32))
"""

from __future__ import annotations

from .genid import generation
from .hooks import HookError, after_restore, before_snapshot
from .lifecycle import prepare_snapshot, restore_uniqueness
from .memory import Secret, SecretWipedError
from .restorers import SHARED_BY_DESIGN, keep_deterministic

__version__ = "0.1.0"

__all__ = [
    "SHARED_BY_DESIGN",
    "HookError",
    "Secret",
    "SecretWipedError",
    "__version__",
    "after_restore",
    "before_snapshot",
    "generation",
    "keep_deterministic",
    "prepare_snapshot",
    "restore_uniqueness",
]
