"""SysGenId in user space: a per-sandbox generation counter with watchers.

Semantics follow the SysGenId kernel proposal (v8, Documentation/misc-devices/sysgenid.rst):

* the counter is a u32 that starts at 0; ``trigger(min_gen)`` sets it to ``max(min_gen, current + 1)``;
* readers map one page and compare bytes 0-3 (little-endian u32): a memory read, no syscall;
* a watcher remembers the generation it last acknowledged; ``read`` blocks while it is current,
  ``fileno()`` is readable while it is outdated, ``ack(gen)`` accepts only the current generation;
* ``wait_watchers(timeout)`` waits until no *tracked* watcher is outdated.

Layout on disk (a tmpfs, so nothing reaches a disk):

* ``<path>``: the counter page, exactly ``PAGE_SIZE`` bytes; any process may ``mmap`` it read-only;
* ``<path>.watchers/`` (made by the first watcher): one ``<pid>.<n>.state`` file (acked u32, tracked u32) and one
  ``<pid>.<n>.fifo`` per watcher; ``trigger`` writes a byte into every FIFO so that ``poll`` wakes;
* ``<path>.watchers/lock``: ``flock`` serialising ``trigger`` against ``ack``.

Dependency-free and cheap to import: this module runs inside every sandbox.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import select
import struct
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = [
    "ENV_VAR",
    "PAGE_SIZE",
    "CounterFileError",
    "Watcher",
    "generation",
    "path",
    "trigger",
    "wait_watchers",
    "watcher",
]

ENV_VAR = "SNAPSAFE_SYSGENID_PATH"
PAGE_SIZE = mmap.PAGESIZE
_U32 = struct.Struct("<I")
_STATE = struct.Struct("<II")  # acked generation, tracked flag
_MAX_U32 = 0xFFFFFFFF


class CounterFileError(OSError):
    """The counter file is missing, of the wrong size, or not a counter file."""


class _Unmapped:
    """Stands in for the page until first use, so that ``generation()`` has no branch."""

    def __getitem__(self, index: int) -> int:
        _map_default()
        return _page[index]


_page: memoryview | _Unmapped = _Unmapped()  # the counter page as u32 words
_mm: mmap.mmap | None = None
_path: str | None = None
_owned: tuple[int, str] | None = None  # (pid, path) of a counter this process created and removes at exit
_watchers: weakref.WeakSet[Watcher] = weakref.WeakSet()


def generation() -> int:
    """The sandbox's current generation: one read of the mapped counter page."""
    return _page[0]


def path() -> str:
    """The path of this sandbox's counter file (created on first use)."""
    if _path is None:
        _map_default()
    assert _path is not None
    return _path


def _tmpfs_dir() -> str:
    for candidate in ("/dev/shm", "/run/shm", os.environ.get("XDG_RUNTIME_DIR") or ""):
        if candidate and os.path.isdir(candidate) and os.access(candidate, os.W_OK):
            return candidate
    import tempfile

    return tempfile.gettempdir()


def _map_default() -> None:
    """First use: map the sandbox's counter, or create one owned by this process."""
    global _owned
    existing = os.environ.get(ENV_VAR)
    if existing:
        _map(existing)
        return
    created = create_counter()
    _map(created)
    _owned = (os.getpid(), created)
    import atexit

    atexit.register(_remove_own_counter)


def create_counter(initial: int = 0, directory: str | None = None, path: str | None = None) -> str:
    """Create a fresh counter file holding ``initial`` and return its path.

    ``path`` names it exactly (engines name a clone's counter after its template's, so that
    ``remove_counters`` can find every counter of a sandbox family); else a unique name in
    ``directory`` (default: a tmpfs). The caller owns it; :func:`remove_counter` deletes it.
    """
    if not 0 <= initial <= _MAX_U32:
        raise ValueError(f"generation must be a u32 (0..{_MAX_U32}), got {initial!r}")
    if path is not None:
        target = path
    else:
        name = f"snapsafe-sysgenid-{os.getpid()}-{os.urandom(4).hex()}"
        target = os.path.join(directory or _tmpfs_dir(), name)
    fd = os.open(target, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.ftruncate(fd, PAGE_SIZE)
        os.pwrite(fd, _U32.pack(initial), 0)
    finally:
        os.close(fd)
    return target  # the watcher directory is made by the first watcher (a clone rarely has one)


def remove_counter(counter_path: str) -> None:
    """Delete a counter file and its watcher directory (missing parts are fine)."""
    import shutil

    shutil.rmtree(counter_path + ".watchers", ignore_errors=True)
    try:
        os.unlink(counter_path)
    except FileNotFoundError:
        pass


def remove_counters(counter_path: str) -> None:
    """Delete ``counter_path`` and the counters named after it (``<counter_path>-*``: its clones')."""
    import glob

    for derived in glob.glob(glob.escape(counter_path) + "-*"):
        if not derived.endswith(".watchers"):
            remove_counter(derived)
    remove_counter(counter_path)


def sweep_stale_counters(directory: str | None = None) -> list[str]:
    """Remove counter files left by processes killed before they could (SIGKILL): those whose
    creator (the PID in the name) is gone and that no live process maps. Host-side housekeeping,
    run once per orchestrator start; returns what was removed."""
    import re

    directory = directory or _tmpfs_dir()
    pattern = re.compile(r"^snapsafe-sysgenid-(\d+)-[0-9a-f]+(-.*)?$")
    candidates = []
    for name in os.listdir(directory):
        m = pattern.match(name)
        if m and not name.endswith(".watchers") and not _pid_alive(int(m.group(1))):
            candidates.append(os.path.join(directory, name))
    if not candidates:
        return []
    mapped: set[str] = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/maps") as maps:
                mapped.update(line.split(None, 5)[-1].strip() for line in maps if "snapsafe-sysgenid-" in line)
        except OSError:
            continue
    stale = [c for c in candidates if c not in mapped and c + " (deleted)" not in mapped]
    for counter in stale:
        remove_counter(counter)
    return stale


def _open_checked(counter_path: str, flags: int) -> int:
    try:
        fd = os.open(counter_path, flags)
    except FileNotFoundError:
        raise CounterFileError(
            errno.ENOENT, f"SysGenId counter file {counter_path} does not exist (check ${ENV_VAR})"
        ) from None
    size = os.fstat(fd).st_size
    if size != PAGE_SIZE:
        os.close(fd)
        raise CounterFileError(
            errno.EINVAL,
            f"{counter_path} is not a SysGenId counter file: size {size} bytes, expected {PAGE_SIZE}",
        )
    return fd


def _map(counter_path: str) -> None:
    """Map ``counter_path`` as this process's counter and publish it to child processes."""
    global _page, _mm, _path
    fd = _open_checked(counter_path, os.O_RDWR)
    try:
        mm = mmap.mmap(fd, PAGE_SIZE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    finally:
        os.close(fd)
    _mm, _path = mm, counter_path
    _page = memoryview(mm).cast("I")
    os.environ[ENV_VAR] = counter_path


def _remove_own_counter() -> None:
    if _owned is not None and _owned[0] == os.getpid():
        remove_counter(_owned[1])


_remapper: Callable[[int, str], None] | None = None


def _fixed_remapper() -> Callable[[int, str], None]:
    """A function that maps an fd over our counter page in place (built once: ctypes is costly).

    ``prepare_snapshot`` builds it in the template, so a clone's ``rebind`` pays nothing for it.
    """
    global _remapper
    if _remapper is not None:
        return _remapper
    import ctypes

    if _mm is None:
        _map_default()
    libc = ctypes.CDLL(None, use_errno=True)
    mmap_fn = libc.mmap
    mmap_fn.restype = ctypes.c_void_p
    mmap_fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    buf = (ctypes.c_char * PAGE_SIZE).from_buffer(_mm)  # type: ignore[arg-type]
    address = ctypes.addressof(buf)
    del buf
    map_fixed = 0x10
    failed = ctypes.c_void_p(-1).value

    def remap(fd: int, counter_path: str) -> None:
        result = mmap_fn(address, PAGE_SIZE, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_SHARED | map_fixed, fd, 0)
        if result is None or result == failed:
            err = ctypes.get_errno()
            raise OSError(err, f"cannot remap the SysGenId page onto {counter_path}: {os.strerror(err)}")

    _remapper = remap
    return remap


def prepare_rebind() -> None:
    """Do now the one-off work of :func:`rebind` (called before a snapshot)."""
    _fixed_remapper()


def rebind(counter_path: str) -> None:
    """Make ``counter_path`` this process's counter, in place of the inherited one.

    Used by engines in a clone (a forked copy shares its parent's counter page): the page is
    replaced at the *same address* (``MAP_FIXED``), so every reader that mapped it earlier, in
    Python or C, now reads the clone's own counter; watchers move to the new watcher directory
    keeping their file descriptor numbers, so selectors registered earlier keep working.
    """
    global _path
    if _mm is None:
        _map(counter_path)
        return
    remap = _fixed_remapper()
    fd = _open_checked(counter_path, os.O_RDWR)
    try:
        remap(fd, counter_path)
    finally:
        os.close(fd)
    _path = counter_path
    os.environ[ENV_VAR] = counter_path
    for w in list(_watchers):
        w._move(counter_path + ".watchers")


def _current(counter_path: str) -> int:
    if counter_path == _path:
        return _page[0]
    fd = _open_checked(counter_path, os.O_RDONLY)
    try:
        return _U32.unpack(os.pread(fd, 4, 0))[0]
    finally:
        os.close(fd)


@contextmanager
def _locked(watch_dir: str) -> Iterator[None]:
    fd = os.open(os.path.join(watch_dir, "lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _watcher_entries(watch_dir: str) -> Iterator[tuple[str, int]]:
    """(state path, owner pid) of every watcher; removes the files of dead owners."""
    try:
        names = os.listdir(watch_dir)
    except FileNotFoundError:
        return
    for name in names:
        if not name.endswith(".state"):
            continue
        pid = int(name.split(".", 1)[0])
        state = os.path.join(watch_dir, name)
        if not _pid_alive(pid):
            for stale in (state, state[: -len(".state")] + ".fifo"):
                try:
                    os.unlink(stale)
                except FileNotFoundError:
                    pass
            continue
        yield state, pid


def trigger(min_gen: int = 0) -> int:
    """Advance the generation to ``max(min_gen, current + 1)``, wake every watcher, return it."""
    if not isinstance(min_gen, int) or isinstance(min_gen, bool):
        raise TypeError(f"min_gen must be an int, got {type(min_gen).__name__}")
    if not 0 <= min_gen <= _MAX_U32:
        raise ValueError(f"min_gen must be a u32 (0..{_MAX_U32}), got {min_gen}")
    counter_path = path()
    watch_dir = counter_path + ".watchers"
    if not os.path.isdir(watch_dir):  # no watcher was ever opened: nobody to wake
        new = max(min_gen, (_page[0] + 1) & _MAX_U32)
        _page[0] = new
        return new
    with _locked(watch_dir):
        new = max(min_gen, (_page[0] + 1) & _MAX_U32)
        _page[0] = new
        for state, _pid in _watcher_entries(watch_dir):
            _poke(state[: -len(".state")] + ".fifo")
    return new


def _poke(fifo: str) -> None:
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:  # no reader any more (ENXIO) or gone: the watcher is closing
        return
    try:
        os.write(fd, b"!")
    except BlockingIOError:  # FIFO full: already readable
        pass
    finally:
        os.close(fd)


class Watcher:
    """A handle that is told when the generation moves (see module docstring)."""

    _count = 0

    def __init__(self, track: bool = False) -> None:
        if not isinstance(track, bool):
            raise TypeError(f"track must be a bool, got {type(track).__name__}")
        self.track = track
        self._closed = False
        self._fd = -1
        Watcher._count += 1
        self._name = f"{os.getpid()}.{Watcher._count}"
        self._dir = path() + ".watchers"
        self._acked = generation()
        self._fd = self._open_fifo(self._dir)
        _watchers.add(self)
        if generation() != self._acked:  # a trigger raced with this watcher's creation: wake it anyway
            _poke(os.path.join(self._dir, self._name + ".fifo"))

    def _open_fifo(self, watch_dir: str) -> int:
        os.makedirs(watch_dir, 0o755, exist_ok=True)
        base = os.path.join(watch_dir, self._name)
        os.mkfifo(base + ".fifo", 0o600)
        fd = os.open(base + ".fifo", os.O_RDONLY | os.O_NONBLOCK)
        # Hold a write end ourselves so the read end never reports EOF (always "readable").
        self._wfd = os.open(base + ".fifo", os.O_WRONLY | os.O_NONBLOCK)
        self._write_state(base + ".state")
        return fd

    def _write_state(self, state_path: str | None = None) -> None:
        state_path = state_path or os.path.join(self._dir, self._name + ".state")
        tmp = state_path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(_STATE.pack(self._acked, int(self.track)))
        os.replace(tmp, state_path)

    def _move(self, watch_dir: str) -> None:
        """Re-create this watcher in another sandbox's directory, keeping ``fileno()``."""
        old_fd, old_wfd = self._fd, self._wfd
        if self._name.startswith(f"{os.getpid()}."):  # ours, not a forked parent's: remove
            self._unlink_files()
        self._name = f"{os.getpid()}.{self._name.split('.', 1)[1]}"
        self._dir = watch_dir
        new_fd = self._open_fifo(watch_dir)
        os.dup2(new_fd, old_fd)
        os.close(new_fd)
        os.close(old_wfd)
        self._fd = old_fd
        if self._acked != generation():
            _poke(os.path.join(watch_dir, self._name + ".fifo"))

    def fileno(self) -> int:
        """A descriptor readable (for select/poll/asyncio) while this watcher is outdated."""
        self._check_open()
        return self._fd

    @property
    def outdated(self) -> bool:
        self._check_open()
        return self._acked != generation()

    def read(self, timeout: float | None = None) -> int:
        """Block while up to date; return the new generation once outdated.

        ``timeout=0`` raises ``BlockingIOError`` when up to date; a positive timeout that
        expires raises ``TimeoutError``.
        """
        self._check_open()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            current = generation()
            if current != self._acked:
                return current
            if timeout == 0:
                raise BlockingIOError(errno.EAGAIN, f"watcher is up to date (generation {current})")
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if remaining == 0.0:
                raise TimeoutError(f"generation stayed at {current} for {timeout} s")
            select.select([self._fd], [], [], remaining)

    def ack(self, gen: int) -> None:
        """Acknowledge ``gen``, which must be the current generation."""
        self._check_open()
        if not isinstance(gen, int) or isinstance(gen, bool):
            raise TypeError(f"ack expects an int generation, got {type(gen).__name__}")
        with _locked(self._dir):
            current = generation()
            if gen != current:
                raise ValueError(f"cannot acknowledge generation {gen}: the current generation is {current}")
            try:
                while os.read(self._fd, 4096):
                    pass
            except BlockingIOError:
                pass
            self._acked = gen
            self._write_state()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        _watchers.discard(self)
        for fd in (self._fd, self._wfd):
            try:
                os.close(fd)
            except OSError:
                pass
        if self._name.startswith(f"{os.getpid()}."):  # a forked child leaves its parent's files
            self._unlink_files()

    def _unlink_files(self) -> None:
        base = os.path.join(self._dir, self._name)
        for suffix in (".state", ".fifo"):
            try:
                os.unlink(base + suffix)
            except FileNotFoundError:
                pass

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("operation on a closed watcher")

    def __enter__(self) -> Watcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if not self._closed and self._fd >= 0 and self._name.startswith(f"{os.getpid()}."):
                self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"acked={self._acked} tracked={self.track}"
        return f"<snapsafe.genid.Watcher {self._name} {state}>"


def watcher(track: bool = False) -> Watcher:
    """Open a watcher. Only event-loop software should pass ``track=True``: tracked watchers
    must acknowledge each new generation before :func:`wait_watchers` returns."""
    return Watcher(track=track)


def outdated_watchers() -> list[str]:
    """Names (``pid.n``) of tracked watchers that have not acknowledged the current generation."""
    watch_dir = path() + ".watchers"
    current = generation()
    late = []
    for state, _pid in _watcher_entries(watch_dir):
        try:
            with open(state, "rb") as f:
                acked, tracked = _STATE.unpack(f.read(_STATE.size))
        except (FileNotFoundError, struct.error):
            continue
        if tracked and acked != current:
            late.append(os.path.basename(state)[: -len(".state")])
    return late


def wait_watchers(timeout: float | None = None) -> None:
    """Block until no tracked watcher is outdated; ``TimeoutError`` names the late ones."""
    if timeout is not None and timeout < 0:
        raise ValueError(f"timeout must be >= 0 or None, got {timeout}")
    deadline = None if timeout is None else time.monotonic() + timeout
    pause = 0.0001
    while True:
        late = outdated_watchers()
        if not late:
            return
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(
                f"tracked watchers did not acknowledge generation {generation()} within {timeout} s: "
                + ", ".join(f"pid {n.split('.')[0]} watcher {n.split('.')[1]}" for n in late)
            )
        time.sleep(pause)
        pause = min(pause * 2, 0.005)
