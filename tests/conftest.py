from __future__ import annotations

import os
import sys

import pytest

from snapsafe import genid


@pytest.fixture
def counter():
    """A fresh SysGenId counter made this process's own for one test."""
    previous = genid.path()
    path = genid.create_counter()
    genid.rebind(path)
    yield path
    genid.rebind(previous)
    genid.remove_counter(path)


def run_python(code: str, env: dict[str, str] | None = None, timeout: float = 30):
    """Run ``code`` in a fresh interpreter; returns the CompletedProcess (text)."""
    import subprocess

    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True, text=True,
                          timeout=timeout)
