"""Shared test helpers: run the console script as a user would, and find leftover processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TARGETS = Path(__file__).resolve().parent / "fixtures" / "targets"
TAG_VAR = "SNAPSAFE_TEST_TAG"


def snapsafe_exe() -> list[str]:
    exe = shutil.which("snapsafe")
    return [exe] if exe else [sys.executable, "-m", "snapsafe.cli"]


def new_tag() -> str:
    return uuid.uuid4().hex


def cli_env(tag: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SNAPSAFE_SYSGENID_PATH"}
    env[TAG_VAR] = tag
    env.update(extra or {})
    return env


def snapsafe(*args: str, tag: str | None = None, env: dict[str, str] | None = None, timeout: float = 120,
             cwd: str | Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``snapsafe ARGS`` and check, once it returned, that none of its processes is left."""
    tag = tag or new_tag()
    res = subprocess.run(snapsafe_exe() + list(args), capture_output=True, text=True, timeout=timeout,
                         env=cli_env(tag, env), cwd=cwd or ROOT)
    assert wait_gone(tag), f"processes left behind by snapsafe {' '.join(args)}: {processes_with_tag(tag)}"
    return res


def json_lines(stdout: str) -> tuple[list[dict], dict]:
    """(clone rows, summary) of ``snapsafe run --json`` output."""
    objs = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    rows = [o for o in objs if "summary" not in o]
    summaries = [o["summary"] for o in objs if "summary" in o]
    assert len(summaries) == 1, stdout
    return rows, summaries[0]


def processes_with_tag(tag: str) -> list[tuple[int, str]]:
    """Live processes whose environment carries ``tag`` (zombies excluded)."""
    found = []
    needle = f"{TAG_VAR}={tag}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle not in f.read().split(b"\0"):
                    continue
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            state = stat.rsplit(")", 1)[1].split()[0]
            if state == "Z":
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        found.append((int(entry), cmd))
    return found


def wait_gone(tag: str, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while processes_with_tag(tag):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
