"""Built-in repairs of the Python ecosystem's hidden per-process state.

Each restorer has a name and can be switched off (``disable("random")``, the ``disable=`` argument
of ``snapsafe.restore_uniqueness``, or ``SNAPSAFE_RESTORERS_OFF=random,numpy`` in the
environment). They run in every clone before the user's after-restore hooks.

Finding live generators walks the garbage collector's objects, which costs tens of milliseconds in a
large process; ``snapsafe.prepare_snapshot()`` does it once in the template (via :func:`collect`),
so a clone only reseeds the list it inherited.

What cannot be repaired in a running interpreter is listed in :data:`SHARED_BY_DESIGN` for the
audit tools, not hidden.
"""

from __future__ import annotations

import os
import sys
import weakref
from collections.abc import Callable, Iterable
from typing import Any

__all__ = [
    "NAMES",
    "SHARED_BY_DESIGN",
    "collect",
    "disable",
    "disabled",
    "enable",
    "keep_deterministic",
    "run",
]

ENV_OFF = "SNAPSAFE_RESTORERS_OFF"

#: Values every clone shares and no restorer can change; the audit tools report them as known.
SHARED_BY_DESIGN: list[dict[str, str]] = [
    {
        "name": "hash_secret",
        "what": "the string/bytes hash secret (PYTHONHASHSEED); hash() of a str is the same in every clone",
        "why": "CPython fixes it at interpreter start; dicts and sets built at init depend on it",
        "advice": "never use hash() of strings as an identifier or a secret",
    },
    {
        "name": "address_layout",
        "what": "object addresses (id()) and the memory layout (ASLR offsets)",
        "why": "a clone is a copy of the template's address space",
        "advice": "do not derive identifiers or nonces from id() or addresses",
    },
]

_keep_weak: weakref.WeakSet[Any] = weakref.WeakSet()
_keep_strong: dict[int, Any] = {}
_collected: list[Any] | None = None
_disabled: set[str] = set()


def keep_deterministic(rng: Any) -> Any:
    """Exclude ``rng`` (a ``random.Random`` or NumPy generator) from reseeding; returns it."""
    try:
        _keep_weak.add(rng)
    except TypeError:  # not weak-referenceable
        _keep_strong[id(rng)] = rng
    return rng


def _kept(rng: Any) -> bool:
    try:
        if rng in _keep_weak:
            return True
    except TypeError:
        pass
    return _keep_strong.get(id(rng)) is rng


def disable(*names: str) -> None:
    """Switch restorers off by name for this process."""
    unknown = set(names) - set(NAMES)
    if unknown:
        raise ValueError(f"unknown restorer(s) {', '.join(sorted(unknown))}; known: {', '.join(NAMES)}")
    _disabled.update(names)


def enable(*names: str) -> None:
    """Switch restorers back on."""
    _disabled.difference_update(names)


def disabled() -> set[str]:
    """Names switched off, from :func:`disable` and ``$SNAPSAFE_RESTORERS_OFF``."""
    from_env = {n.strip() for n in os.environ.get(ENV_OFF, "").split(",") if n.strip()}
    if "all" in from_env:
        from_env = set(NAMES)
    return _disabled | from_env


def _generator_classes() -> tuple[type, ...]:
    import random

    classes: list[type] = [random.Random]
    np_random = sys.modules.get("numpy.random")
    if np_random is not None:
        classes += [np_random.RandomState, np_random.Generator]
    return tuple(classes)


def collect() -> int:
    """Find the live generators now (walks the GC); restore uses this list. Returns its length."""
    global _collected
    import gc
    import random

    classes = _generator_classes()
    found = [o for o in gc.get_objects() if isinstance(o, classes) and not isinstance(o, random.SystemRandom)]
    _collected = found
    return len(found)


def _live_generators() -> list[Any]:
    if _collected is None:
        collect()
    assert _collected is not None
    return _collected


def _restore_random(entropy: bytes) -> None:
    import random

    for rng in [random._inst, *_live_generators()]:  # type: ignore[attr-defined]
        if isinstance(rng, random.Random) and not isinstance(rng, random.SystemRandom) and not _kept(rng):
            random.Random.seed(rng, int.from_bytes(os.urandom(32) + entropy, "little"))


def _restore_numpy(entropy: bytes) -> None:
    np_random = sys.modules.get("numpy.random")
    if np_random is None:
        return
    legacy = getattr(getattr(np_random, "mtrand", None), "_rand", None)
    targets = [legacy] if legacy is not None else []
    seen: set[int] = set()
    for rng in targets + _live_generators():
        if id(rng) in seen or _kept(rng):  # the legacy global is usually among the live ones too
            continue
        seen.add(id(rng))
        if isinstance(rng, np_random.Generator):
            _reseed_bit_generator(rng.bit_generator, entropy)
        elif isinstance(rng, np_random.RandomState):
            if type(rng._bit_generator).__name__ == "MT19937":
                # The legacy tuple form also clears the cached normal draw, which would repeat in every clone.
                rng.set_state(("MT19937", _random_mt_key(), 624, 0, 0.0))
            else:
                _reseed_bit_generator(rng._bit_generator, entropy)


def _random_mt_key() -> Any:
    import numpy as np

    key = np.frombuffer(os.urandom(624 * 4), dtype=np.uint32).copy()
    key[0] |= 0x80000000  # never the all-zero state
    return key


def _reseed_bit_generator(bitgen: Any, entropy: bytes) -> None:
    """Give ``bitgen`` a fresh random state. The common generators get their state straight from
    the kernel (fast: no SeedSequence hashing in the clone's critical path)."""
    kind = type(bitgen).__name__
    if kind in ("PCG64", "PCG64DXSM"):
        bitgen.state = {"bit_generator": kind,
                        "state": {"state": int.from_bytes(os.urandom(16), "little"),
                                  "inc": int.from_bytes(os.urandom(16), "little") | 1},
                        "has_uint32": 0, "uinteger": 0}
    elif kind == "MT19937":
        bitgen.state = {"bit_generator": "MT19937", "state": {"key": _random_mt_key(), "pos": 624}}
    else:
        bitgen.state = type(bitgen)(int.from_bytes(os.urandom(16) + entropy, "little")).state


def _restore_tempfile(entropy: bytes) -> None:
    tempfile = sys.modules.get("tempfile")
    if tempfile is not None:
        tempfile._name_sequence = None  # type: ignore[attr-defined]  # re-created, seeded afresh


def _restore_uuid(entropy: bytes) -> None:
    uuid = sys.modules.get("uuid")
    if uuid is None:
        return
    # RFC 4122 section 4.5: a random node ID with the multicast bit set, never a real MAC.
    uuid._node = int.from_bytes(os.urandom(6), "big") | (1 << 40)  # type: ignore[attr-defined]
    # uuid1's clock sequence then comes from the reseeded `random`, not libuuid's cloned state.
    for name in ("_generate_time_safe", "_uuid_generate_time"):
        if hasattr(uuid, name):
            setattr(uuid, name, None)
    uuid._last_timestamp = None  # type: ignore[attr-defined]


def _restore_multiprocessing(entropy: bytes) -> None:
    process = sys.modules.get("multiprocessing.process")
    if process is not None:
        process.current_process().authkey = os.urandom(32)


def _restore_ssl(entropy: bytes) -> None:
    ssl = sys.modules.get("ssl")
    if ssl is not None:
        ssl.RAND_add(os.urandom(32) + entropy, 32.0)


_RESTORERS: dict[str, Callable[[bytes], None]] = {
    "random": _restore_random,
    "numpy": _restore_numpy,
    "tempfile": _restore_tempfile,
    "uuid": _restore_uuid,
    "multiprocessing": _restore_multiprocessing,
    "ssl": _restore_ssl,
}
NAMES: tuple[str, ...] = tuple(_RESTORERS)


def run(entropy: bytes = b"", disable: Iterable[str] = ()) -> list[str]:
    """Run every enabled restorer; returns the names that ran."""
    global _collected
    off = disabled() | set(disable)
    unknown = off - set(NAMES)
    if unknown:
        raise ValueError(f"unknown restorer(s) {', '.join(sorted(unknown))}; known: {', '.join(NAMES)}")
    ran = []
    try:
        for name, restorer in _RESTORERS.items():
            if name not in off:
                restorer(entropy)
                ran.append(name)
    finally:
        _collected = None  # the next restore (e.g. of a re-snapshotted clone) looks afresh
    return ran
