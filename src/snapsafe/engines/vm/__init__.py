"""The VM engine: QEMU guests with a VM Generation ID, snapshots whose RAM clones map copy-on-write.

Modules, one concern each: ``qemu`` (binary, accelerator, command line, spawning), ``qmp`` (the
monitor client), ``machine`` (one QEMU process and its channels), ``kernel`` (the cached guest
kernel), ``image`` (the initramfs builder), ``engine`` (template, snapshot, clone). Guest-side code
lives with the agent: ``snapsafe.agent.device`` (the virtio-serial transport) and
``snapsafe.agent.vmguest`` (reseeding the guest kernel after a restore).
"""

from snapsafe.engines.vm.engine import VmClone, VmEngine, VmSnapshot, VmTemplate

__all__ = ["VmClone", "VmEngine", "VmSnapshot", "VmTemplate"]
