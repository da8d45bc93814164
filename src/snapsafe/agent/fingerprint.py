"""What `snapsafe audit` compares across processes: values that must differ in every process.

Runs inside a sandbox (a cold process or a clone) right after the handler answered. Keys are
stable across processes, so the auditor can line them up: ``random.global``,
``random.instance:<module>.<name>`` for generators reachable from module globals, ``uuid4``,
``response:<json path>`` for every leaf of the handler's response, and so on.
"""

from __future__ import annotations

import os
import sys
from typing import Any

#: Keys whose duplication in clones would be a snapsafe bug (a built-in restorer covers them),
#: mapped to the restorer responsible (None: the kernel or OpenSSL covers it).
REPAIRED_BY: dict[str, str | None] = {
    "random.global": "random",
    "random.instance": "random",
    "numpy.global": "numpy",
    "numpy.instance": "numpy",
    "uuid1": "uuid",
    "uuid4": None,
    "tempfile.name": "tempfile",
    "multiprocessing.authkey": "multiprocessing",
    "ssl.rand_bytes": "ssl",
    "os.urandom": None,
}
#: Keys shared by every clone by design (see snapsafe.SHARED_BY_DESIGN): reported, never failing.
SHARED_KEYS = {"hash.str": "hash_secret"}


def _generators() -> list[tuple[str, Any]]:
    """(module.name, generator) for generators bound to module globals, in a stable order."""
    import random

    np_random = sys.modules.get("numpy.random")
    classes: tuple[type, ...] = (random.Random,)
    if np_random is not None:
        classes += (np_random.RandomState, np_random.Generator)
    found = []
    for module_name in sorted(sys.modules):
        module = sys.modules.get(module_name)
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict) or module_name.startswith(("snapsafe", "_")):
            continue
        for attr in sorted(k for k in namespace if isinstance(k, str)):
            value = namespace[attr]
            if isinstance(value, classes) and not isinstance(value, random.SystemRandom):
                found.append((f"{module_name}.{attr}", value))
    return found


def _draw(rng: Any) -> float:
    import random

    if isinstance(rng, random.Random):
        return rng.random()
    return float(rng.random()) if hasattr(rng, "random") else float(rng.random_sample())


def _leaves(value: Any, path: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _leaves(v, f"{path}.{k}", out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _leaves(v, f"{path}[{i}]", out)
    else:
        out[f"response:{path}"] = value


def collect(response: Any) -> dict[str, Any]:
    """The fingerprint of this process after an invocation that returned ``response``."""
    import multiprocessing
    import random
    import ssl
    import tempfile
    import uuid

    fp: dict[str, Any] = {
        "random.global": random.random(),
        "uuid1": str(uuid.uuid1()),
        "uuid4": str(uuid.uuid4()),
        "tempfile.name": os.path.basename(tempfile.mktemp()),
        "multiprocessing.authkey": multiprocessing.current_process().authkey.hex(),
        "ssl.rand_bytes": ssl.RAND_bytes(16).hex(),
        "os.urandom": os.urandom(16).hex(),
        "hash.str": hash("snapsafe-audit-fixed-string"),
    }
    np_random = sys.modules.get("numpy.random")
    if np_random is not None:
        fp["numpy.global"] = float(np_random.random())
    for name, rng in _generators():
        kind = "random" if isinstance(rng, random.Random) else "numpy"
        fp[f"{kind}.instance:{name}"] = _draw(rng)
    _leaves(response, "$", fp)
    return fp
