"""QEMU itself: finding the binary, choosing an accelerator, command lines, spawning processes.

Every QEMU process is started by one long-lived spawner thread with ``PR_SET_PDEATHSIG=SIGKILL``:
the kernel kills it when its parent dies, however the orchestrator ends (SIGKILL included). The
parent-death signal fires when the *thread* that forked exits, so forking from short-lived threads
(clones restored concurrently) would kill QEMU early; the spawner thread lives as long as the process.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import shutil
import subprocess
from pathlib import Path

from snapsafe.engines.spawn import spawn  # noqa: F401 - re-exported: QEMU processes die with the orchestrator
from snapsafe.errors import EnvironmentProblem

QEMU = "qemu-system-x86_64"
ACCELS = ("auto", "kvm", "tcg")
#: -cpu per accelerator. Plain `-cpu host` aborts in nested setups (MSR 0x10a, arch-capabilities).
CPU = {"kvm": "host,-arch-capabilities", "tcg": "max"}


class QemuMissing(EnvironmentProblem):
    """qemu-system-x86_64 is not installed."""


class AccelUnavailable(EnvironmentProblem):
    """The accelerator asked for cannot be used here."""


@functools.lru_cache(maxsize=1)
def find_qemu() -> tuple[str, str]:
    """(path, version) of qemu-system-x86_64, or :class:`QemuMissing`."""
    path = os.environ.get("SNAPSAFE_QEMU") or shutil.which(QEMU)
    if not path:
        raise QemuMissing(f"{QEMU} not found; install it with `apt-get install qemu-system-x86` "
                          "(or run scripts/install-vm.sh as root)")
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired) as err:
        raise QemuMissing(f"{path} does not run: {err}") from None
    match = re.search(r"version (\S+)", out)
    return path, match.group(1) if match else out.strip()


def hardware_kvm() -> str | None:
    """The hardware KVM module loaded here (kvm_intel / kvm_amd), or None."""
    for module in ("kvm_intel", "kvm_amd"):
        if Path("/sys/module", module).exists():
            return module
    return None


def choose_accel(requested: str = "auto") -> tuple[str, str]:
    """(accelerator, why). ``auto`` picks KVM only where it is hardware KVM."""
    if requested not in ACCELS:
        raise AccelUnavailable(f"unknown accelerator {requested!r}; choose from {', '.join(ACCELS)}")
    module = hardware_kvm()
    if requested == "tcg":
        return "tcg", "asked for (--accel tcg)"
    if requested == "kvm" or module:
        if not os.path.exists("/dev/kvm"):
            raise AccelUnavailable("/dev/kvm does not exist: load kvm_intel or kvm_amd, or use --accel tcg")
        if not os.access("/dev/kvm", os.R_OK | os.W_OK):
            raise AccelUnavailable("no permission on /dev/kvm: add this user to the 'kvm' group "
                                   "(usermod -aG kvm $USER, then log in again), or use --accel tcg")
        if module is None:
            other = "kvm_pvm (software nested KVM, cannot run stock kernels)" \
                if Path("/sys/module/kvm_pvm").exists() else "no kvm_intel/kvm_amd"
            raise AccelUnavailable(f"/dev/kvm here is {other}; use --accel tcg")
        return "kvm", f"hardware KVM ({module}) and /dev/kvm is usable"
    if Path("/sys/module/kvm_pvm").exists():
        return "tcg", "/dev/kvm is kvm_pvm (software nested KVM, cannot run stock kernels): using TCG"
    if os.path.exists("/dev/kvm"):
        return "tcg", "/dev/kvm exists but no kvm_intel/kvm_amd is loaded: using TCG"
    return "tcg", "no /dev/kvm: using TCG (about 17x slower guest code)"


@dataclasses.dataclass(frozen=True)
class MachineSpec:
    """Everything that must be identical between a template and its clones (and the raw baseline)."""

    qemu: str
    accel: str
    memory_mb: int
    kernel: str
    initrd: str
    append: str


def command_line(spec: MachineSpec, *, ram_fd: int, share: bool, qmp_fd: int, ctl_fd: int, vmgenid: str,
                 incoming: bool) -> list[str]:
    """The QEMU command line. RAM is ``/proc/self/fd/<ram_fd>`` (a memfd or the snapshot's RAM file):
    ``share=on`` in the template (its memory *is* the file), ``share=off`` in clones (a private
    copy-on-write mapping: clone writes never reach the file). QMP and the control channel are
    sockets passed in by fd, so no socket file exists anywhere."""
    argv = [
        spec.qemu, "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
        "-machine", f"q35,accel={spec.accel},memory-backend=mem",
        "-cpu", CPU[spec.accel], "-smp", "1", "-m", f"{spec.memory_mb}M",
        "-object", f"memory-backend-file,id=mem,size={spec.memory_mb}M,mem-path=/proc/self/fd/{ram_fd},"
                   f"share={'on' if share else 'off'}",
        "-kernel", spec.kernel, "-initrd", spec.initrd, "-append", spec.append,
        "-serial", "stdio",
        "-chardev", f"socket,id=qmp,fd={qmp_fd}", "-mon", "chardev=qmp,mode=control",
        "-device", "virtio-serial-pci,id=vser",
        "-chardev", f"socket,id=ctl,fd={ctl_fd}", "-device", "virtserialport,chardev=ctl,name=snapsafe.ctl",
        "-device", f"vmgenid,id=vmgenid0,guid={vmgenid}",
    ]
    if incoming:
        argv += ["-incoming", "defer"]
    return argv


