"""Wipe-on-suspend memory for secrets.

A :class:`Secret` keeps its bytes in a private anonymous mapping of its own, advised
``MADV_WIPEONFORK`` (a forked clone sees zeros), ``MADV_DONTDUMP`` (kept out of core dumps) and
locked with ``mlock`` (kept out of swap) where the kernel allows. Every live Secret is zeroed in
place by :func:`wipe_all`, which ``snapsafe.prepare_snapshot()`` calls before every snapshot, so
the secret never reaches a snapshot image.

The mapping starts with an 8-byte header: a "filled" marker and the length. The marker lives in
the wiped memory itself, so a Secret knows it was wiped even when the wipe was done by the kernel
(``fork``) and not by this process.

Copies are the caller's business: ``reveal()`` returns a new ``bytes`` object that lives in the
ordinary Python heap until it is garbage-collected, and so does anything made from it. Keep such
copies short-lived (inside the handler) and never in module globals.
"""

from __future__ import annotations

import mmap
import struct
import warnings
import weakref

__all__ = ["Secret", "SecretWipedError", "wipe_all"]

MADV_WIPEONFORK = 18
MADV_DONTDUMP = 16
_HEADER = struct.Struct("<II")  # filled marker, length
_FILLED = 0x53414645  # "SAFE"; zero means wiped
_live: weakref.WeakSet[Secret] = weakref.WeakSet()
_warned: set[str] = set()


class SecretWipedError(RuntimeError):
    """The Secret was wiped (by a snapshot, a fork or ``wipe()``) and has not been refilled."""


def _warn_once(what: str, err: OSError) -> None:
    if what in _warned:
        return
    _warned.add(what)
    warnings.warn(
        f"snapsafe.Secret: {what} is not available here ({err.strerror or err}); "
        "secrets are still wiped before every snapshot",
        RuntimeWarning,
        stacklevel=4,
    )


def _mlock(mm: mmap.mmap, size: int) -> None:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.mlock.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        buf = (ctypes.c_char * size).from_buffer(mm)
        try:
            if libc.mlock(ctypes.addressof(buf), size) != 0:
                err = ctypes.get_errno()
                import os

                raise OSError(err, os.strerror(err))
        finally:
            del buf
    except OSError as err:
        _warn_once("mlock", err)


class Secret:
    """Bytes that are zeroed before every snapshot and never inherited by a forked clone.

    ``Secret(b"...")`` holds those bytes; ``Secret(32)`` reserves 32 bytes, empty (wiped) until
    ``fill``. After a wipe, ``reveal()`` raises :class:`SecretWipedError` until ``fill`` is called
    again, typically from an ``@snapsafe.after_restore`` hook.
    """

    __slots__ = ("_mm", "_capacity", "__weakref__")

    def __init__(self, data_or_size: bytes | bytearray | memoryview | int) -> None:
        if isinstance(data_or_size, bool):
            raise TypeError("Secret() takes bytes-like data or a size in bytes, not a bool")
        if isinstance(data_or_size, int):
            if data_or_size <= 0:
                raise ValueError(f"Secret size must be a positive number of bytes, got {data_or_size}")
            capacity, data = data_or_size, None
        elif isinstance(data_or_size, (bytes, bytearray, memoryview)):
            data = bytes(data_or_size)
            if not data:
                raise ValueError("Secret data must not be empty")
            capacity = len(data)
        else:
            raise TypeError(
                f"Secret() takes bytes-like data or a size in bytes, not {type(data_or_size).__name__}"
            )
        size = _HEADER.size + capacity
        self._mm = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self._capacity = capacity
        for advice, what in ((MADV_WIPEONFORK, "MADV_WIPEONFORK"), (MADV_DONTDUMP, "MADV_DONTDUMP")):
            try:
                self._mm.madvise(advice)
            except OSError as err:
                _warn_once(what, err)
        _mlock(self._mm, len(self._mm))
        _live.add(self)
        if data is not None:
            self.fill(data)

    @property
    def capacity(self) -> int:
        """The most bytes this Secret can hold."""
        return self._capacity

    @property
    def wiped(self) -> bool:
        """True when the content is gone (wiped, never filled, or this is a forked clone)."""
        return _HEADER.unpack_from(self._mm, 0)[0] != _FILLED

    def fill(self, data: bytes | bytearray | memoryview) -> None:
        """Store new secret bytes (at most ``capacity``)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"Secret.fill() takes bytes-like data, not {type(data).__name__}")
        n = memoryview(data).nbytes
        if not 0 < n <= self._capacity:
            raise ValueError(f"Secret.fill() takes 1 to {self._capacity} bytes, got {n}")
        self._mm[_HEADER.size : _HEADER.size + n] = data
        if n < self._capacity:
            self._mm[_HEADER.size + n :] = bytes(self._capacity - n)
        _HEADER.pack_into(self._mm, 0, _FILLED, n)

    def reveal(self) -> bytes:
        """A copy of the secret bytes; raises :class:`SecretWipedError` after a wipe."""
        filled, n = _HEADER.unpack_from(self._mm, 0)
        if filled != _FILLED:
            raise SecretWipedError(
                "this Secret was wiped before a snapshot (or in a forked clone): "
                "refill it with fill() in an after-restore hook"
            )
        return self._mm[_HEADER.size : _HEADER.size + n]

    def wipe(self) -> None:
        """Zero the content and the header in place."""
        self._mm[:] = bytes(len(self._mm))

    def __len__(self) -> int:
        return 0 if self.wiped else _HEADER.unpack_from(self._mm, 0)[1]

    def __repr__(self) -> str:
        return f"<snapsafe.Secret capacity={self._capacity} {'wiped' if self.wiped else 'filled'}>"

    def __reduce__(self) -> object:
        raise TypeError("a snapsafe.Secret cannot be pickled: it would copy the secret out of safe memory")

    def __copy__(self) -> Secret:
        raise TypeError("a snapsafe.Secret cannot be copied; make a new Secret from reveal() if you must")

    def __deepcopy__(self, memo: object) -> Secret:
        return self.__copy__()


def wipe_all() -> int:
    """Zero every live Secret in this process; returns how many were wiped."""
    secrets = list(_live)
    for secret in secrets:
        secret.wipe()
    return len(secrets)


def plant_canary(canary_hex: str) -> int:
    """Fill every live Secret with ``canary_hex`` repeated (for ``snapsafe audit --leaks``).

    Written byte by byte from the hex text, so no ``bytes`` object holding the canary is ever made
    on the heap (it would linger there and be found by the leak search). Returns how many.
    """
    if len(canary_hex) % 2 or not canary_hex:
        raise ValueError("canary must be a non-empty even-length hex string")
    n = len(canary_hex) // 2
    secrets = list(_live)
    for secret in secrets:
        mm = secret._mm
        for i in range(secret.capacity):
            j = (i % n) * 2
            mm[_HEADER.size + i] = int(canary_hex[j : j + 2], 16)
        _HEADER.pack_into(mm, 0, _FILLED, secret.capacity)
    return len(secrets)
