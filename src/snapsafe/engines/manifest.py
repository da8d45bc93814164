"""On-disk snapshot directories: a manifest with a format version and the SHA-256 of every file.

Layout (engines put their own files beside the manifest)::

    DIR/manifest.json     {"format": "snapsafe-snapshot", "format_version": 1, "engine": ..., "files": {...}}
    DIR/<engine files>    e.g. CRIU page images, a VM's RAM file and device state

Writing is atomic: everything goes into a hidden temporary sibling directory, the manifest is
written last, and the directory is renamed into place; a failed or interrupted snapshot leaves no
directory that looks valid. Snapshots hold process memory, so directories are 0700 and files 0600.

Loading checks in a fixed order, all failing through :class:`SnapshotFormatError` that names the
file and the reason (as Firecracker's snapshot loader does): the directory, the manifest
(present, parseable), the format magic, the format version (independent of snapsafe's version),
the engine, then every listed file (present, size, SHA-256), then files the manifest does not list.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from snapsafe.errors import UserError

FORMAT = "snapsafe-snapshot"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


class SnapshotFormatError(UserError):
    """A snapshot directory that must not be restored (exit code 2)."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclasses.dataclass
class Manifest:
    engine: str
    target: str
    files: dict[str, dict[str, Any]]
    created: float = dataclasses.field(default_factory=time.time)
    python: str = dataclasses.field(default_factory=platform.python_version)
    snapsafe_version: str = ""
    engine_info: dict[str, Any] = dataclasses.field(default_factory=dict)
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    @property
    def total_bytes(self) -> int:
        return sum(int(f["size"]) for f in self.files.values())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _list_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST)


def write_snapshot_dir(final: str | Path, engine: str, target: str,
                       populate: Callable[[Path], dict[str, Any]]) -> Manifest:
    """Create ``final`` atomically. ``populate(tmpdir)`` writes the engine's files into ``tmpdir``
    and returns ``engine_info`` for the manifest. ``final`` must not exist yet."""
    from snapsafe import __version__

    final = Path(final)
    if final.exists():
        raise UserError(f"{final} already exists; choose a new directory or remove it first")
    parent = final.parent if str(final.parent) else Path(".")
    if not parent.is_dir():
        raise UserError(f"{parent} is not a directory")
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=parent))  # created 0700
    try:
        engine_info = populate(tmp)
        files = {}
        for path in _list_files(tmp):
            os.chmod(path, 0o600)
            files[str(path.relative_to(tmp))] = {"size": path.stat().st_size, "sha256": _sha256(path)}
        for path in (p for p in tmp.rglob("*") if p.is_dir()):
            os.chmod(path, 0o700)
        manifest = Manifest(engine=engine, target=target, files=files, snapsafe_version=__version__,
                            engine_info=engine_info)
        fd = os.open(tmp / MANIFEST, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(dataclasses.asdict(manifest), f, indent=2, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def load_manifest(directory: str | Path, engine: str | None = None, verify: bool = True) -> Manifest:
    """Read and check ``directory``'s manifest (see the module docstring for the order)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise SnapshotFormatError(directory, "is not a snapshot directory (no such directory)")
    path = directory / MANIFEST
    if not path.is_file():
        raise SnapshotFormatError(path, "missing: this is not a snapsafe snapshot directory")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise SnapshotFormatError(path, f"unreadable manifest ({err})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SnapshotFormatError(path, f"not a snapsafe snapshot manifest (format {data.get('format')!r})"
                                  if isinstance(data, dict) else "not a snapsafe snapshot manifest")
    if data.get("format_version") != FORMAT_VERSION:
        raise SnapshotFormatError(path, f"format version {data.get('format_version')!r}; this snapsafe reads "
                                        f"version {FORMAT_VERSION}")
    try:
        names = {f.name for f in dataclasses.fields(Manifest)}
        manifest = Manifest(**{k: v for k, v in data.items() if k in names})
    except TypeError as err:
        raise SnapshotFormatError(path, f"malformed manifest ({err})") from None
    if engine is not None and manifest.engine != engine:
        raise SnapshotFormatError(path, f"made by the {manifest.engine} engine, not {engine}")
    if verify:
        verify_files(directory, manifest)
    return manifest


def verify_files(directory: Path, manifest: Manifest) -> None:
    """Every listed file present with its size and SHA-256; no unlisted files."""
    for name, meta in sorted(manifest.files.items()):
        path = directory / name
        if not path.is_file():
            raise SnapshotFormatError(path, "missing")
        size = path.stat().st_size
        if size != meta["size"]:
            raise SnapshotFormatError(path, f"truncated or grown: {size} bytes, the manifest says {meta['size']}")
        if _sha256(path) != meta["sha256"]:
            raise SnapshotFormatError(path, "modified: its SHA-256 does not match the manifest")
    extra = [p for p in _list_files(directory) if str(p.relative_to(directory)) not in manifest.files]
    if extra:
        raise SnapshotFormatError(extra[0], "not listed in the manifest (added after the snapshot)")
