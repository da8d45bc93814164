"""Which files a scan reads, and reading them: walks directories for ``*.py``, skips what is no source."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

MAX_BYTES = 5 * 1024 * 1024
#: never descended into (the same spirit as ruff's default excludes)
SKIP_DIRS = frozenset(
    {".git", ".hg", ".svn", "__pycache__", "node_modules", ".venv", "venv", ".tox", ".nox", ".eggs",
     ".mypy_cache", ".pytest_cache", ".ruff_cache", "__pypackages__", "site-packages", ".direnv"}
)


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


def python_files(paths: list[str]) -> Iterator[str]:
    """The files to scan, in a stable order: files given by name, and ``*.py`` under directories."""
    seen: set[str] = set()
    for path in paths:
        candidates = [path] if not os.path.isdir(path) else _walk(path)
        for candidate in candidates:
            real = os.path.realpath(candidate)
            if real not in seen:
                seen.add(real)
                yield candidate


def _walk(root: str) -> Iterator[str]:
    for directory, dirs, files in os.walk(root):
        # a virtualenv is marked by pyvenv.cfg whatever its name
        dirs[:] = sorted(
            d for d in dirs if d not in SKIP_DIRS and not os.path.exists(os.path.join(directory, d, "pyvenv.cfg"))
        )
        for name in sorted(files):
            if name.endswith(".py"):
                yield os.path.join(directory, name)


def read_source(path: str) -> str | Skipped:
    """The text of a source file, or why it is skipped (binary, not UTF-8, larger than 5 MB)."""
    try:
        size = os.path.getsize(path)
        if size > MAX_BYTES:
            return Skipped(path, f"larger than {MAX_BYTES // (1024 * 1024)} MB")
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        return Skipped(path, err.strerror or str(err))
    if b"\0" in data:
        return Skipped(path, "binary file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return Skipped(path, "not UTF-8")
