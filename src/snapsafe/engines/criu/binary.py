"""Finding a CRIU that works here: the binary, its version, root, and ``criu check``.

Looked for in this order: ``$SNAPSAFE_CRIU``; the build cache of ``scripts/install-criu.sh``
(``/var/cache/snapsafe/criu-<version>/criu``, newest first; ``$SNAPSAFE_CRIU_CACHE`` moves it);
``criu`` on PATH (and /usr/sbin, which a non-login PATH may lack). Every failure is one line that
says what to do.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import shutil
import subprocess
from pathlib import Path

from snapsafe.errors import EnvironmentProblem

MIN_VERSION = (4, 1)
INSTALL_HINT = "run ./scripts/test.sh, or as root: bash scripts/install-criu.sh"
#: CRIU keeps its kernel-feature cache (criu.kdat) in the RUNDIR it was built with; install-criu.sh
#: builds with this one, a root-only directory on a tmpfs (CRIU caches only on a tmpfs).
KDAT_DIR = "/dev/shm/snapsafe-criu"


@dataclasses.dataclass(frozen=True)
class Criu:
    """A CRIU binary that passed ``criu check``."""

    path: str
    version: str

    def __str__(self) -> str:
        return f"CRIU {self.version} at {self.path}"


def parse_version(text: str) -> tuple[int, ...]:
    """``'4.1.1'`` -> ``(4, 1, 1)``; unparseable -> ``()``."""
    match = re.match(r"(\d+(?:\.\d+)*)", text.strip())
    return tuple(int(part) for part in match.group(1).split(".")) if match else ()


def version_of(path: str) -> str:
    """The version ``criu --version`` prints ('' when it does not run)."""
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
    match = re.search(r"^Version:\s*(\S+)", out, re.MULTILINE)
    return match.group(1) if match else ""


def cache_dir() -> Path:
    return Path(os.environ.get("SNAPSAFE_CRIU_CACHE", "/var/cache/snapsafe"))


def candidates() -> list[str]:
    """Where CRIU may be, best first (``$SNAPSAFE_CRIU`` alone when it is set)."""
    explicit = os.environ.get("SNAPSAFE_CRIU")
    if explicit:
        return [explicit]
    built = sorted(cache_dir().glob("criu-*/criu"), key=lambda p: parse_version(p.parent.name[5:]), reverse=True)
    found = [str(p) for p in built]
    on_path = shutil.which("criu") or shutil.which("criu", path="/usr/local/sbin:/usr/sbin:/sbin")
    if on_path:
        found.append(on_path)
    return found


def ensure_kdat_dir() -> None:
    """Create CRIU's kernel-feature cache directory (gone after a reboot); refuse one root does not own."""
    try:
        os.mkdir(KDAT_DIR, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return  # no /dev/shm: CRIU probes the kernel at every start, slower but correct
    st = os.lstat(KDAT_DIR)
    if st.st_uid != 0 or (st.st_mode & 0o022):
        raise EnvironmentProblem(f"{KDAT_DIR} (CRIU's kernel-feature cache) is not a directory only root may "
                                 "write to; remove it and try again")


@functools.lru_cache(maxsize=1)
def find_criu() -> Criu:
    """The CRIU to use, checked once per process; :class:`EnvironmentProblem` when there is none."""
    if os.geteuid() != 0:
        raise EnvironmentProblem("the criu engine needs root (CRIU dumps and restores processes with ptrace "
                                 "and namespaces); run snapsafe as root")
    paths = candidates()
    if not paths:
        raise EnvironmentProblem(f"CRIU is not installed (the criu engine needs CRIU >= "
                                 f"{'.'.join(map(str, MIN_VERSION))}); {INSTALL_HINT}")
    too_old = []
    for path in paths:
        if not os.access(path, os.X_OK):
            too_old.append(f"{path} is not an executable file")
            continue
        version = version_of(path)
        if parse_version(version) < MIN_VERSION:
            too_old.append(f"{path} is CRIU {version or '(unknown version)'}")
            continue
        ensure_kdat_dir()
        check = subprocess.run([path, "check"], capture_output=True, text=True, timeout=60)
        if check.returncode != 0:
            lines = [line for line in (check.stderr + check.stdout).splitlines()
                     if line.strip() and "RLIMIT_NOFILE" not in line]
            reason = lines[-1].strip() if lines else f"exit code {check.returncode}"
            raise EnvironmentProblem(f"`{path} check` fails on this kernel ({os.uname().release}): {reason}; "
                                     f"{INSTALL_HINT}")
        return Criu(path=path, version=version)
    raise EnvironmentProblem(f"the criu engine needs CRIU >= {'.'.join(map(str, MIN_VERSION))} "
                             f"(older ones fail on kernels >= 6.13), but {'; '.join(too_old)}; {INSTALL_HINT}")
