"""The CRIU engine: snapshots on disk, restored as exact clones (same PID, same memory).

    binary.py    find a CRIU >= 4.1 that passes `criu check` (or say what to do)
    template.py  the sandbox process: start the agent, prepare, dump
    dump.py      `criu dump`, and the resources each clone gets afresh (--inherit-fd)
    snapshot.py  an image directory; restores clones, any number at once
    restore.py   `criu restore` as init of a new PID namespace, optionally with `criu lazy-pages`
    clone.py     a restored clone: its channel, output, counter; ended with its namespace

See docs/criu.md for what exact clones mean for user code.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

from snapsafe.engines.base import Engine
from snapsafe.engines.criu.binary import Criu, find_criu
from snapsafe.engines.criu.dump import memory_files as _memory_files
from snapsafe.engines.criu.snapshot import CriuSnapshot, DumpedTemplate, remove_stale_dirs
from snapsafe.engines.criu.template import CriuTemplate
from snapsafe.engines.manifest import MANIFEST, Manifest, SnapshotFormatError, load_manifest, verify_files

__all__ = ["CriuEngine", "check_versions"]

#: engine_info keys a restore needs.
REQUIRED_INFO = ("criu_version", "python", "pid", "generation", "channel_inode", "output_inode", "counter_path")


class CriuEngine(Engine):
    name = "criu"

    def check(self) -> str:
        criu = find_criu()
        return f"criu: {criu}, `criu check` passes (kernel {platform.release()})"

    def start(self, target: str) -> CriuTemplate:
        criu = find_criu()
        remove_stale_dirs()
        return CriuTemplate(target, self.options, criu)

    def open_snapshot(self, directory: str) -> CriuSnapshot:
        """Check ``directory`` completely before anything is restored: the manifest (format, version,
        engine), the CRIU and Python versions it was made with, then every file's size and SHA-256."""
        criu = find_criu()
        remove_stale_dirs()
        manifest = load_manifest(directory, engine=self.name, verify=False)
        check_versions(Path(directory), manifest, criu)
        verify_files(Path(directory), manifest)
        return CriuSnapshot(DumpedTemplate(manifest.target, self.options), criu, Path(directory),
                            manifest.engine_info)

    def memory_files(self, directory: str | os.PathLike[str]) -> list[Path]:
        """The files of a snapshot that hold the sandbox's raw memory (CRIU's ``pages-*.img``)."""
        return _memory_files(Path(directory))


def check_versions(directory: Path, manifest: Manifest, criu: Criu) -> None:
    """Refuse images made by another CRIU or another Python (their memory holds that interpreter)."""
    path = directory / MANIFEST
    info = manifest.engine_info
    missing = [key for key in REQUIRED_INFO if key not in info]
    if missing:
        raise SnapshotFormatError(path, f"malformed manifest: engine_info lacks {', '.join(missing)}")
    if info["criu_version"] != criu.version:
        raise SnapshotFormatError(path, f"images made by CRIU {info['criu_version']}, but this machine has CRIU "
                                        f"{criu.version}; take the snapshot again with this CRIU")
    here = platform.python_version()
    for made_with in (manifest.python, info["python"]):
        if made_with != here:
            raise SnapshotFormatError(path, f"images of a Python {made_with} process, but snapsafe runs on Python "
                                            f"{here}; restore with Python {made_with} or take the snapshot again")
    executable = info.get("python_executable")
    if executable and executable != sys.executable and not os.path.exists(executable):
        raise SnapshotFormatError(path, f"images of a process running {executable}, which is not on this machine")
