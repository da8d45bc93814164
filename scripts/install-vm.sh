#!/usr/bin/env bash
# Installs what the VM engine needs (run as root by scripts/test.sh on a fresh Debian 12):
#   QEMU (qemu-system-x86), busybox-static for the guest's userspace, and a guest kernel:
#   Debian's 6.12 cloud kernel (VMGENID, virtio PCI and virtio console built in), downloaded with
#   `apt-get download` and unpacked into the cache, never installed on the host.
# Idempotent: a second run only checks what is there.
set -euo pipefail

CACHE="${SNAPSAFE_VM_CACHE:-/var/cache/snapsafe/vm}"
KERNELS="$CACHE/kernels"
APT=(apt-get -o DPkg::Lock::Timeout=600 -q)

if [ "$(id -u)" != 0 ]; then
    echo "install-vm: needs root (apt-get); skipping" >&2
    exit 0
fi

need=()
for package in qemu-system-x86 busybox-static binutils; do  # binutils: strip, for a smaller guest image
    dpkg -s "$package" >/dev/null 2>&1 || need+=("$package")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "install-vm: installing ${need[*]}"
    "${APT[@]}" update
    DEBIAN_FRONTEND=noninteractive "${APT[@]}" install -y --no-install-recommends "${need[@]}"
else
    echo "install-vm: qemu-system-x86, busybox-static and binutils already installed"
fi

if compgen -G "$KERNELS/*/boot/vmlinuz-*" >/dev/null; then
    echo "install-vm: guest kernel cached: $(ls -d "$KERNELS"/*/boot/vmlinuz-* | tail -n1)"
    exit 0
fi

pick() { apt-cache search --names-only '^linux-image-6\.12\.[0-9]+\+deb12-cloud-amd64$' | cut -d' ' -f1 | sort -V | tail -n1; }
package="$(pick)"
if [ -z "$package" ]; then
    "${APT[@]}" update
    package="$(pick)"
fi
if [ -z "$package" ]; then
    echo "install-vm: no linux-image-6.12.*+deb12-cloud-amd64 in the apt sources (bookworm-security has it)" >&2
    exit 1
fi
version="${package#linux-image-}"
echo "install-vm: downloading $package (guest kernel, about 35 MB)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
chown _apt "$work" 2>/dev/null || true  # apt-get download drops privileges to _apt
(cd "$work" && apt-get -q download "$package")
mkdir -p "$KERNELS"
dest="$KERNELS/$version"
rm -rf "$dest.partial"
# Only /boot is needed (vmlinuz has everything the guest uses built in); modules stay out.
dpkg-deb --fsys-tarfile "$work"/*.deb | tar -x -C "$work" ./boot
mkdir -p "$dest.partial"
mv "$work/boot" "$dest.partial/boot"
mv "$dest.partial" "$dest"
echo "install-vm: guest kernel cached: $(ls "$dest"/boot/vmlinuz-*)"
