"""The VM engine: a QEMU guest is the sandbox; a snapshot is its RAM file plus its device state.

* Template: guest RAM is a memfd mapped ``share=on``, so the RAM file *is* the template's memory.
  After ``prepare`` the engine stops the VM, migrates it with ``x-ignore-shared`` (only device
  state goes into the stream, into a second memfd) and QEMU quits; the template never runs again.
  The RAM memfd is then sealed (``F_SEAL_WRITE``): nobody can write it any more, kernel-enforced.
* Clone: a new QEMU maps the same RAM file ``share=off`` (private, copy-on-write: a clone's writes
  never reach the file, and unmodified pages stay shared between clones), ``-incoming defer``,
  ``migrate-incoming`` from the device state, ``cont``, with a new vmgenid GUID per clone. Then the
  shared clone conversation: ``restored`` (with host entropy that the guest agent feeds to the
  guest kernel's RNG) -> ``unique``.
* On disk (``snapshot(directory)``): the RAM file, the device state, the kernel and the initramfs
  go into a manifest-checked directory; clones map that RAM file ``share=off``.

Nothing is left on the host when the orchestrator ends, however it ends: memfds vanish with their
last holder, sockets are socketpairs, and every QEMU has ``PR_SET_PDEATHSIG=SIGKILL``.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from snapsafe.agent import protocol as p
from snapsafe.engines.base import (
    Clone,
    CloneFailed,
    Engine,
    InitError,
    Options,
    SandboxError,
    Snapshot,
    SnapshotError,
    Template,
)
from snapsafe.engines.channel import Channel
from snapsafe.engines.manifest import SnapshotFormatError, load_manifest, write_snapshot_dir
from snapsafe.engines.vm import image as images
from snapsafe.engines.vm import qemu
from snapsafe.engines.vm.kernel import find_kernel, kernel_version
from snapsafe.engines.vm.machine import Machine
from snapsafe.engines.vm.qmp import QmpError
from snapsafe.errors import EnvironmentProblem

#: Kernel command line: serial console, quiet, and a panic (the agent exited) ends QEMU (-no-reboot).
APPEND = "console=ttyS0 quiet panic=-1 rdinit=/init mitigations=off"
RAM_FILE, STATE_FILE, KERNEL_FILE, INITRD_FILE = "ram", "state", "vmlinuz", "initrd.img"
MIB = 1 << 20


class GuestBootTimeout(InitError):
    """The guest did not reach its agent in time."""


def guest_memory_mb(options: Options, image_bytes: int) -> int:
    """Guest RAM: the function's memory, room for the unpacked initramfs (twice while it unpacks),
    and the kernel's own; rounded up to 64 MiB."""
    need = options.memory_mb + 2 * image_bytes // MIB + 192
    return -(-need // 64) * 64


def _ram_memfd(size: int) -> int:
    fd = os.memfd_create("snapsafe-vm-ram", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    os.ftruncate(fd, size)
    return fd


def _seal(fd: int) -> None:
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS,
                fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)


def _copy_sparse(src_fd: int, dest: Path) -> None:
    """Copy a (mostly sparse) RAM file, data extents only: a 512 MiB guest that used 60 MiB costs 60."""
    size = os.fstat(src_fd).st_size
    out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.ftruncate(out, size)
        offset = 0
        while offset < size:
            try:
                start = os.lseek(src_fd, offset, os.SEEK_DATA)
            except OSError:  # ENXIO: only a hole is left
                break
            end = os.lseek(src_fd, start, os.SEEK_HOLE)
            while start < end:  # (copy_file_range refuses memfd -> another filesystem)
                chunk = os.pread(src_fd, min(end - start, 4 * MIB), start)
                if not chunk:
                    break
                os.pwrite(out, chunk, start)
                start += len(chunk)
            offset = end
    finally:
        os.close(out)


class VmEngine(Engine):
    name = "vm"
    #: seconds from QEMU's start to the guest's /init reaching the agent (TCG boots in about 5 s)
    boot_timeout = 60.0

    def check(self) -> str:
        path, version = qemu.find_qemu()
        kernel = find_kernel()
        accel, why = qemu.choose_accel(self.options.accel)
        if not os.path.exists(images.BUSYBOX):
            raise EnvironmentProblem(f"{images.BUSYBOX} not found; install busybox-static "
                                     "(run scripts/install-vm.sh as root)")
        return (f"vm: QEMU {version} ({path}); guest kernel {kernel_version(kernel)} ({kernel}); "
                f"accelerator {accel}: {why}")

    def start(self, target: str) -> VmTemplate:
        return VmTemplate(target, self.options, self.boot_timeout)

    def open_snapshot(self, directory: str) -> VmSnapshot:
        manifest = load_manifest(directory, engine=self.name)  # checksums first, in a fixed order
        info = manifest.engine_info
        _, version = qemu.find_qemu()
        if info.get("qemu_version") != version:
            raise SnapshotFormatError(directory, f"made by QEMU {info.get('qemu_version')}, this is QEMU {version}; "
                                                 "restore it with that QEMU or take a new snapshot")
        accel = info.get("accel", "tcg")
        if self.options.accel not in ("auto", accel):
            raise SnapshotFormatError(directory, f"taken under {accel}, cannot be restored under "
                                                 f"{self.options.accel}; drop --accel or take a new snapshot")
        if accel == "kvm":
            qemu.choose_accel("kvm")  # raises with the reason when KVM is not usable here
        d = Path(directory).resolve()
        spec = qemu.MachineSpec(qemu=qemu.find_qemu()[0], accel=accel, memory_mb=int(info["memory_mb"]),
                                kernel=str(d / KERNEL_FILE), initrd=str(d / INITRD_FILE), append=info["append"])
        template = _SavedTemplate(manifest.target, self.options)
        return VmSnapshot(template, int(info["generation"]), spec, info["vmgenid"], directory=d)

    def memory_files(self, directory: str | os.PathLike[str]) -> list[Path]:
        """The files of a snapshot directory that hold guest memory (for `snapsafe leaks`)."""
        load_manifest(directory, engine=self.name, verify=False)
        return [Path(directory) / RAM_FILE]


class VmTemplate(Template):
    sandbox_name = "guest"

    def _exit_reason(self) -> str:
        return f"ended ({self.machine.describe()})" if self.machine is not None else "did not start"

    def _last_output(self) -> str:
        return self.machine.last_output() if self.machine is not None else ""

    def __init__(self, target: str, options: Options, boot_timeout: float) -> None:
        super().__init__(target, options)
        self.machine: Machine | None = None
        self.channel: Channel | None = None
        self.ram_fd: int | None = None
        self.snapshotted = False
        start = time.perf_counter()
        qemu_path, self.qemu_version = qemu.find_qemu()
        kernel = find_kernel()
        self.accel, self.accel_reason = qemu.choose_accel(options.accel)
        try:
            if options.runtime == "lambda":  # the image is built from the handler's module:function
                module, _, function = target.rpartition(".")
                self.image = images.build(f"{module.replace('/', '.')}:{function}", options.cwd, options.env,
                                          ("--mode", "sandbox", "--vm-guest", *options.agent_args()),
                                          lambda_handler=target)
            else:
                self.image = images.build(target, options.cwd, options.env)
        except images.TargetImportError as err:
            kind = "InitError" if err.kind == "init" else "ImportModuleError"
            raise InitError(f"{target}: {err}", error_type=f"Runtime.{kind}") from None
        self.timings["image_ms"] = (time.perf_counter() - start) * 1000
        memory_mb = guest_memory_mb(options, self.image.size)
        self.spec = qemu.MachineSpec(qemu=qemu_path, accel=self.accel, memory_mb=memory_mb, kernel=str(kernel),
                                     initrd=str(self.image.path), append=APPEND)
        self.kernel_version = kernel_version(kernel)
        self.vmgenid = str(uuid.uuid4())
        try:
            self._boot(boot_timeout, start)
        except BaseException:
            self.close()
            raise

    def _boot(self, boot_timeout: float, start: float) -> None:
        self.ram_fd = _ram_memfd(self.spec.memory_mb * MIB)
        boot = time.perf_counter()
        try:
            self.machine = Machine(self.spec, tag="template", ram_fd=self.ram_fd, share=True, vmgenid=self.vmgenid,
                                   incoming=False, sink=self.options.output)
        except QmpError as err:
            raise InitError(f"{self.target}: {err}") from None
        if not self.machine.wait_booted(boot_timeout):
            reason = "QEMU is still running" if self.machine.alive else self.machine.describe()
            raise GuestBootTimeout(f"{self.target}: the guest did not boot within {boot_timeout:g} s under "
                                   f"{self.accel} ({reason}){self.machine.last_output()}")
        self.timings["boot_ms"] = (time.perf_counter() - boot) * 1000
        self.channel = Channel(self.machine.ctl)
        self.receive_hello(start)
        self.pid = self.machine.pid

    def snapshot(self, directory: str | None = None) -> VmSnapshot:
        if self.snapshotted or self.machine is None or self.channel is None or self.ram_fd is None:
            raise SandboxError("a VM template is snapshotted once (its RAM file becomes the snapshot); "
                               "start a new template for another snapshot")
        start = time.perf_counter()
        ready = self.request_ready()
        prepared = time.perf_counter()
        state_fd = os.memfd_create("snapsafe-vm-state", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            qmp = self.machine.qmp
            assert qmp is not None
            qmp.execute("migrate-set-capabilities",
                        {"capabilities": [{"capability": "x-ignore-shared", "state": True}]})
            qmp.execute("stop")
            qmp.execute("getfd", {"fdname": "state"}, fds=(state_fd,))
            qmp.execute("migrate", {"uri": "fd:state"})
            qmp.wait_migration()
            self.machine.quit()  # the template never runs again: its RAM file is the snapshot now
            _seal(self.ram_fd)
            _seal(state_fd)
        except (QmpError, OSError) as err:
            os.close(state_fd)
            raise SnapshotError(f"{self.target}: the VM snapshot failed: {err}{self.machine.last_output()}") from None
        self.snapshotted = True
        snapshot = VmSnapshot(self, ready.generation, self.spec, self.vmgenid, ram_fd=self.ram_fd, state_fd=state_fd)
        snapshot.ready = ready  # canaries_planted, for the leak search
        self.ram_fd = None  # the snapshot owns it now
        snapshot.timings["prepare_ms"] = ready.prepare_ms
        snapshot.timings["vm_snapshot_ms"] = (time.perf_counter() - prepared) * 1000
        if directory is not None:
            try:
                write_snapshot_dir(directory, "vm", self.target, snapshot.save)
            except BaseException:
                snapshot.close()
                raise
        snapshot.timings["snapshot_ms"] = (time.perf_counter() - start) * 1000
        return snapshot

    def close(self) -> None:
        if self.machine is not None:
            self.machine.kill()
        if self.channel is not None:
            self.channel.close()
        if self.ram_fd is not None:
            os.close(self.ram_fd)
            self.ram_fd = None


class _SavedTemplate(Template):
    """Stands for the template of a snapshot read from disk: its target and options, nothing to run."""

    def snapshot(self, directory: str | None = None) -> Snapshot:
        raise SandboxError("a snapshot read from disk has no template to snapshot again")


class VmSnapshot(Snapshot):
    def __init__(self, template: Template, generation: int, spec: qemu.MachineSpec, vmgenid: str, *,
                 ram_fd: int | None = None, state_fd: int | None = None, directory: Path | None = None) -> None:
        super().__init__(template, generation)
        self.spec = spec
        self.vmgenid = vmgenid
        self.ram_fd = ram_fd
        self.state_fd = state_fd
        self.directory = directory
        self._live: list[VmClone] = []
        self.ready: p.Ready | None = None

    def memory_sources(self) -> list:  # list[snapsafe.audit.leaks.MemorySource]
        """The guest's memory: the RAM file (the sealed memfd, or ``ram`` of a snapshot directory)."""
        from snapsafe.audit.leaks import file_sources

        if self.directory is not None:
            return file_sources([self.directory / RAM_FILE])
        return file_sources([f"/proc/{os.getpid()}/fd/{self.ram_fd}"])

    # -- the files ------------------------------------------------------------------------------
    def open_ram(self) -> int:
        """A descriptor of the RAM file for one QEMU (read-only: QEMU maps it privately)."""
        if self.directory is not None:
            return os.open(self.directory / RAM_FILE, os.O_RDONLY | os.O_CLOEXEC)
        assert self.ram_fd is not None
        return os.dup(self.ram_fd)

    def open_state(self) -> int:
        """A new open file description of the device state (its own offset: clones read it concurrently)."""
        if self.directory is not None:
            return os.open(self.directory / STATE_FILE, os.O_RDONLY | os.O_CLOEXEC)
        return os.open(f"/proc/self/fd/{self.state_fd}", os.O_RDONLY | os.O_CLOEXEC)

    def ram_sha256(self) -> str:
        import hashlib

        fd = self.open_ram()
        digest = hashlib.sha256()
        try:
            offset = 0
            while chunk := os.pread(fd, 1 << 22, offset):
                digest.update(chunk)
                offset += len(chunk)
        finally:
            os.close(fd)
        return digest.hexdigest()

    def save(self, tmp: Path) -> dict[str, Any]:
        """Write the snapshot's files into ``tmp`` (for manifest.write_snapshot_dir)."""
        assert self.ram_fd is not None and self.state_fd is not None
        _copy_sparse(self.ram_fd, tmp / RAM_FILE)
        _copy_sparse(self.state_fd, tmp / STATE_FILE)
        shutil.copyfile(self.spec.kernel, tmp / KERNEL_FILE)
        shutil.copyfile(self.spec.initrd, tmp / INITRD_FILE)
        template = self.template
        assert isinstance(template, VmTemplate)
        return {"qemu_version": template.qemu_version, "accel": self.spec.accel, "cpu": qemu.CPU[self.spec.accel],
                "memory_mb": self.spec.memory_mb, "append": self.spec.append, "machine": "q35",
                "kernel_version": template.kernel_version, "image_key": template.image.key,
                "guest_target": template.image.guest_target, "vmgenid": self.vmgenid,
                "generation": self.base_generation}

    # -- clones ---------------------------------------------------------------------------------
    def restore(self) -> VmClone:
        clone_id, generation = self.next_clone()
        clone = VmClone(self, clone_id, generation)
        self._live.append(clone)  # from here on, closing the snapshot ends this clone whatever happens
        # A new generation ID per clone makes the guest kernel reseed; exact clones keep the template's.
        vmgenid = str(uuid.uuid4()) if self.options.host_entropy else self.vmgenid
        start = time.perf_counter()
        ram_fd = self.open_ram()
        state_fd = self.open_state()
        try:
            clone.machine = Machine(self.spec, tag=clone_id, ram_fd=ram_fd, share=False, vmgenid=vmgenid,
                                    incoming=True, sink=self.options.output, extra_fds=(state_fd,))
            clone.pid = clone.machine.pid
            qmp = clone.machine.qmp
            assert qmp is not None
            qmp.execute("migrate-set-capabilities",
                        {"capabilities": [{"capability": "x-ignore-shared", "state": True}]})
            qmp.execute("migrate-incoming", {"uri": f"fd:{state_fd}"})
            qmp.wait_migration(self.options.restore_timeout)
            qmp.execute("cont")
        except (QmpError, OSError) as err:
            tail = clone.machine.last_output() if clone.machine else ""
            clone.close()
            raise CloneFailed(f"{clone_id}: restore failed: {err}{tail}") from None
        finally:
            os.close(ram_fd)
            os.close(state_fd)
        clone.timings["restore_ms"] = (time.perf_counter() - start) * 1000
        clone.channel = Channel(clone.machine.ctl, state=p.SNAPSHOTTABLE)
        clone.make_unique()
        clone.timings["ready_ms"] = (time.perf_counter() - start) * 1000
        return clone

    def close(self) -> None:
        for clone in self._live:
            clone.close()
        self._live.clear()
        for fd in (self.ram_fd, self.state_fd):
            if fd is not None:
                os.close(fd)
        self.ram_fd = self.state_fd = None


class VmClone(Clone):
    private_counter = True  # the guest's /dev/shm is the clone's own
    snapshot: VmSnapshot

    def __init__(self, snapshot: VmSnapshot, clone_id: str, generation: int) -> None:
        super().__init__(snapshot, clone_id, generation)
        self.machine: Machine | None = None
        self.notes: dict[str, Any] = {}

    def _after_unique(self, reply: p.Event) -> None:
        if isinstance(reply, p.Unique):
            self.notes = dict(reply.notes)
        super()._after_unique(reply)
        # The counter file lives in the guest and goes with it: nothing for close() to remove here.
        self.guest_counter_path, self.counter_path = self.counter_path, ""

    def _kill(self) -> None:
        if self.machine is not None:
            self.machine.kill()

    def _exit_reason(self) -> str:
        if self.machine is None:
            return "QEMU did not start"
        return self.machine.describe() + self.machine.last_output()
