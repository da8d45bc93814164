"""The criu engine says in one line what is wrong with the environment, and what to do."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.helpers import EXAMPLES, ROOT, snapsafe

pytestmark = pytest.mark.criu

HELLO = f"{EXAMPLES}/hello.py:handler"


def error_line(res) -> str:
    assert res.returncode == 2, res.stderr
    lines = [line for line in res.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    return lines[0]


def fake_criu(tmp_path, script: str):
    """A stand-in ``criu`` executable: what a broken or old installation answers."""
    path = tmp_path / "criu"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return str(path)


@pytest.mark.skipif(os.geteuid() != 0, reason="runs snapsafe as nobody, which needs root to switch to")
def test_not_root():
    exe = shutil.which("snapsafe")
    assert exe, "the console script is installed"
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    readable = subprocess.run(as_nobody + ["sh", "-c", f'test -r "{exe}" && test -r "{ROOT}/src/snapsafe/cli.py"'])
    if readable.returncode != 0:
        pytest.skip(f"user nobody cannot read this checkout ({ROOT}; e.g. a 0700 temporary directory), "
                    "so snapsafe cannot be run as a non-root user here")
    res = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", exe, "run", HELLO,
                          "--engine", "criu"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert "the criu engine needs root" in error_line(res)


def test_missing():
    line = error_line(snapsafe("run", HELLO, "--engine", "criu", env={"SNAPSAFE_CRIU": "/nonexistent/criu"}))
    assert "/nonexistent/criu is not an executable file" in line and "scripts/install-criu.sh" in line


def test_too_old(tmp_path):
    criu = fake_criu(tmp_path, 'echo "Version: 3.17.1"\n')
    line = error_line(snapsafe("run", HELLO, "--engine", "criu", env={"SNAPSAFE_CRIU": criu}))
    assert "needs CRIU >= 4.1" in line and "is CRIU 3.17.1" in line and "scripts/install-criu.sh" in line


def test_check_fails(tmp_path):
    criu = fake_criu(tmp_path, 'if [ "$1" = check ]; then\n'
                               '  echo "Error (criu/kerndat.c:1): vdso: Unexpected rt vDSO area bounds" >&2; exit 1\n'
                               'fi\necho "Version: 4.1.1"\n')
    line = error_line(snapsafe("run", HELLO, "--engine", "criu", env={"SNAPSAFE_CRIU": criu}))
    assert "check` fails on this kernel" in line and "Unexpected rt vDSO area bounds" in line
