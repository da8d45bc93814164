"""Shared by the CRIU tests: skip with the reason when CRIU cannot work here, snapshot helpers."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import pytest

from tests.helpers import TARGETS, snapsafe

EXACT = f"{TARGETS}/exact_clone.py:handler"


@functools.lru_cache(maxsize=1)
def criu_problem() -> str:
    """Why CRIU cannot be used here ('' when it can)."""
    from snapsafe.engines.criu.binary import find_criu
    from snapsafe.errors import EnvironmentProblem

    try:
        find_criu()
    except EnvironmentProblem as err:
        return str(err)
    return ""


def require_criu() -> None:
    reason = criu_problem()
    if reason:
        print(f"skipping: CRIU is unusable here: {reason}")
        pytest.skip(f"CRIU is unusable here: {reason}")


def make_snapshot(directory: Path, target: str = EXACT, *extra: str, env: dict[str, str] | None = None) -> Path:
    """``snapsafe snapshot TARGET -o DIRECTORY --engine criu`` (asserting it worked)."""
    res = snapsafe("snapshot", target, "-o", str(directory), "--engine", "criu", *extra, env=env)
    assert res.returncode == 0, res.stderr
    return directory


def copy_snapshot(source: Path, destination: Path) -> Path:
    shutil.copytree(source, destination)
    return destination
