"""The guest kernel: Debian's 6.12 cloud kernel, unpacked into the cache by scripts/install-vm.sh.

It has what the engine relies on built in (VMGENID, virtio PCI, virtio console, devtmpfs), so the
guest needs no modules. Layout: ``<cache>/kernels/<version>/boot/vmlinuz-<version>``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from snapsafe.errors import EnvironmentProblem

DEFAULT_CACHE = "/var/cache/snapsafe/vm"


class KernelMissing(EnvironmentProblem):
    """No guest kernel in the cache."""


def cache_dir() -> Path:
    """Where install-vm.sh puts kernels (``$SNAPSAFE_VM_CACHE`` overrides)."""
    return Path(os.environ.get("SNAPSAFE_VM_CACHE") or DEFAULT_CACHE)


def _version_key(path: Path) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", path.name)]


def find_kernel() -> Path:
    """The newest cached 6.12 kernel image, or :class:`KernelMissing`."""
    kernels = sorted(cache_dir().glob("kernels/*/boot/vmlinuz-*"), key=_version_key)
    if not kernels:
        raise KernelMissing(f"no guest kernel in {cache_dir()}/kernels; run `sudo scripts/install-vm.sh` "
                            "(apt-get download linux-image-6.12.*+deb12-cloud-amd64)")
    return kernels[-1]


def kernel_version(path: Path) -> str:
    return path.name.removeprefix("vmlinuz-")
