"""A network namespace for a ``--runtime lambda`` sandbox, and its control socket inside it.

The agent and the function process talk over loopback TCP, and the function's ``GET
/runtime/restore/next`` is open when CRIU dumps. So CRIU must dump established TCP connections
(``--tcp-established``), and each clone must restore them in a network namespace of its own (two
clones in one namespace would both need 127.0.0.1:PORT). CRIU restores a namespace only if it dumps
the sandbox's root process in it, and it finds a Unix socket only in a namespace it dumps: so the
namespace is made here, the control socketpair is created inside it, and the agent is started in it
(``nsenter``). ``--network-lock nftables``: the default locks with iptables, absent here.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import socket

from snapsafe.errors import EnvironmentProblem

CLONE_NEWNET = 0x40000000
#: ``criu dump`` / ``criu restore`` options for a sandbox with loopback TCP connections
CRIU_TCP_OPTIONS = ("--tcp-established", "--network-lock", "nftables")


def socketpair_in_new_netns() -> tuple[socket.socket, socket.socket, int]:
    """(ours, theirs, an fd of the new namespace): a socketpair created inside a fresh network
    namespace. Only the calling thread enters it, and it returns to its own before this returns."""
    libc = ctypes.CDLL(None, use_errno=True)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        if libc.unshare(CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise EnvironmentProblem(f"cannot create a network namespace: {os.strerror(err)}")
        try:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            netns = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        finally:
            if libc.setns(home, CLONE_NEWNET) != 0:  # never leave this thread in the sandbox's namespace
                raise OSError(ctypes.get_errno(), "setns back to the orchestrator's network namespace failed")
    finally:
        os.close(home)
    return ours, theirs, netns


def nsenter_prefix(netns_fd: int) -> list[str]:
    """Run a command in the namespace of ``netns_fd`` (pass the fd to the child)."""
    path = shutil.which("nsenter") or shutil.which("nsenter", path="/usr/bin:/bin")
    if not path:
        raise EnvironmentProblem("`nsenter` (util-linux) is not installed; --runtime lambda needs it "
                                 "with --engine criu")
    return [path, f"--net=/proc/self/fd/{netns_fd}"]
