"""A CRIU snapshot: an image directory that any number of clones restore from, at once."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import weakref
from pathlib import Path
from typing import Any

from snapsafe.engines.base import Snapshot, Template
from snapsafe.engines.criu.binary import Criu
from snapsafe.engines.criu.clone import CriuClone
from snapsafe.engines.criu.dump import Externals
from snapsafe.errors import UsageError

TMP_PREFIX = "snapsafe-criu-"


def _tmpfs() -> str | None:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def private_tmpfs_dir(kind: str) -> Path:
    """A new 0700 directory on a tmpfs (process memory must not reach a disk unasked), named after
    this process so that :func:`remove_stale_dirs` can tell when its owner is gone."""
    return Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{kind}-{os.getpid()}-", dir=_tmpfs()))


def remove_stale_dirs() -> None:
    """Remove the temporary directories of orchestrators that were killed (SIGKILL) before they could:
    a temporary snapshot holds the sandbox's whole memory, in RAM."""
    base = Path(_tmpfs() or tempfile.gettempdir())
    for path in base.glob(f"{TMP_PREFIX}*-*-*"):
        try:
            pid = int(path.name[len(TMP_PREFIX):].split("-")[1])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except (ValueError, IndexError, PermissionError):
            continue


class DumpedTemplate(Template):
    """The template of a snapshot opened from disk: its target and options; its process is long gone."""

    def snapshot(self, directory: str | None = None) -> Snapshot:
        raise UsageError("this snapshot was opened from a directory; start a template to take a new one")


class CriuSnapshot(Snapshot):
    """Clones are restored from ``images``; ``info`` is the manifest's ``engine_info``.

    ``owned`` is a temporary directory holding the images (``template.snapshot()`` without a
    directory), removed on close. Each clone works in a directory of its own under ``rundir``.
    """

    def __init__(self, template: Template, criu: Criu, images: Path, info: dict[str, Any],
                 owned: Path | None = None) -> None:
        super().__init__(template, int(info["generation"]))
        self.criu = criu
        self.images = images
        self.info = info
        self.owned = owned
        self.externals = Externals.from_info(info)
        self.pid = int(info["pid"])
        self.rundir = private_tmpfs_dir("run")
        self._live: weakref.WeakSet[CriuClone] = weakref.WeakSet()
        self._live_lock = threading.Lock()
        self.closed = False

    def memory_sources(self) -> list:  # list[snapsafe.audit.leaks.MemorySource]
        """The page images: the dumped process memory, as the clones will get it."""
        from snapsafe.audit.leaks import file_sources
        from snapsafe.engines.criu.dump import memory_files

        return file_sources(memory_files(self.images))

    def restore(self, lazy: bool | None = None) -> CriuClone:
        """Restore a clone (``lazy``: memory served on demand by ``criu lazy-pages``; default from
        ``Options.lazy_restore``) and make it unique; returns once it may serve."""
        if self.closed:
            raise UsageError("this snapshot is closed")
        clone_id, generation = self.next_clone()
        clone = CriuClone(self, clone_id, generation)
        with self._live_lock:
            self._live.add(clone)
        try:
            clone.start(self.options.lazy_restore if lazy is None else lazy)
        except BaseException:
            clone.close()
            raise
        return clone

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with self._live_lock:
            clones = list(self._live)
        for clone in clones:
            clone.close()
        shutil.rmtree(self.rundir, ignore_errors=True)
        if self.owned is not None:
            shutil.rmtree(self.owned, ignore_errors=True)
