#!/usr/bin/env bash
# Installs a working CRIU (>= 4.1) for snapsafe's criu engine. Run as root; idempotent.
#
#   bash scripts/install-criu.sh          # scripts/test.sh runs it for you
#
# Debian 12's criu (3.17) fails on kernels >= 6.13 ("Unexpected rt vDSO area bounds", fixed in
# CRIU 4.1). So: use the distribution's criu when it is >= 4.1; otherwise build CRIU from Debian
# trixie's source package (its orig tarball, hash-checked by apt against the signed Sources index)
# with build dependencies from the running release, once, into $CACHE/criu-<version>/criu.
# Later runs find that binary, run `criu check` and finish in a few seconds.
#
# CRIU probes the kernel's features at every start unless it can keep them in a cache file on a
# tmpfs (about 25 ms per restore). The cache directory is fixed at build time (RUNDIR): we build
# with RUNDIR=/dev/shm/snapsafe-criu, a root-only directory on the tmpfs every Linux has; the
# engine creates it when it is missing (e.g. after a reboot).
set -euo pipefail

MIN_VERSION=4.1
CACHE=${SNAPSAFE_CRIU_CACHE:-/var/cache/snapsafe}
RUNDIR=/dev/shm/snapsafe-criu

say() { echo "install-criu: $*"; }
die() { echo "install-criu: error: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (CRIU needs root to dump and restore processes)"
[ "$(uname -s)" = Linux ] || die "CRIU runs on Linux only"

criu_version() {  # prints e.g. 4.1.1, or nothing
    "$1" --version 2>/dev/null | sed -n 's/^Version: *//p' | head -n1
}

usable() {  # usable PATH: version >= MIN_VERSION and `criu check` passes
    local version
    version=$(criu_version "$1")
    [ -n "$version" ] && dpkg --compare-versions "$version" ge "$MIN_VERSION" || return 1
    mkdir -p -m 0700 "$RUNDIR"
    "$1" check >/dev/null 2>&1
}

# Fixes applied to CRIU's source before building (scripts/criu-patches/*.patch): a cached build
# without them is built again. 0001: Linux >= 6.16 refuses SO_PASSCRED on TCP sockets, which made
# every dump of a TCP socket fail (--runtime lambda dumps loopback TCP connections).
patch_dir="$(cd "$(dirname "$0")" && pwd)/criu-patches"
patches=$(cd "$patch_dir" 2>/dev/null && ls *.patch 2>/dev/null | tr '\n' ' ')

# 1. Already built (the common case on a second run).
for built in $(ls -d "$CACHE"/criu-*/criu 2>/dev/null | sort -V -r); do
    if usable "$built" && grep -qF "patches: $patches" "$(dirname "$built")/SOURCE" 2>/dev/null; then
        say "CRIU $(criu_version "$built") is ready at $built (criu check: looks good)"
        exit 0
    fi
done

# 2. The distribution's criu, when it is recent enough.
if command -v criu >/dev/null && usable "$(command -v criu)"; then
    say "the installed CRIU $(criu_version "$(command -v criu)") works (criu check: looks good)"
    exit 0
fi
APT_WAIT=(-o DPkg::Lock::Timeout=300)
candidate=$(apt-cache policy criu 2>/dev/null | sed -n 's/^ *Candidate: *//p')
if [ -n "$candidate" ] && [ "$candidate" != "(none)" ] && dpkg --compare-versions "$candidate" ge "$MIN_VERSION"; then
    say "installing the distribution's criu $candidate"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${APT_WAIT[@]}" criu
    usable "$(command -v criu)" || die "the distribution's criu $candidate does not pass 'criu check' here"
    say "CRIU $candidate installed"
    exit 0
fi

# 3. Build CRIU from Debian trixie's source package.
say "the distribution offers criu ${candidate:-none} (< $MIN_VERSION): building CRIU from Debian trixie's source"
started=$(date +%s)
mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | grep -v security | head -n1)
if [ -z "$mirror" ]; then
    mirror=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' \
        /etc/apt/sources.list 2>/dev/null || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}

build=$(mktemp -d "${TMPDIR:-/tmp}/snapsafe-criu-build.XXXXXX")
trap 'rm -rf "$build"' EXIT
mkdir -p "$build/apt/lists/partial" "$build/apt/cache/archives/partial" "$build/apt/sources.list.d" "$build/src"
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" > "$build/apt/sources.list"
cat > "$build/apt/apt.conf" <<EOF
Dir::Etc::SourceList "$build/apt/sources.list";
Dir::Etc::SourceParts "$build/apt/sources.list.d";
Dir::State::Lists "$build/apt/lists";
Dir::Cache "$build/apt/cache";
EOF
# The private configuration only reads trixie's source index; the system's apt state is untouched.
private_apt() { APT_CONFIG="$build/apt/apt.conf" apt-get -q -o APT::Sandbox::User=root "$@"; }

say "reading trixie's source index from $mirror"
private_apt update >/dev/null
say "downloading the criu source (apt checks its SHA-256 against the signed index)"
# The mirror serves the orig tarball; the .dsc and Debian's patch set may be missing (404): the
# upstream tarball is all the build needs, so a failure is fatal only without the tarball.
(cd "$build/src" && private_apt source --download-only criu >"$build/source.log" 2>&1) || true
tarball=$(ls "$build"/src/criu_*.orig.tar.* 2>/dev/null | head -n1)
[ -n "$tarball" ] || { cat "$build/source.log" >&2; die "could not download criu's source from $mirror (trixie)"; }
version=$(basename "$tarball" | sed -E 's/^criu_([0-9.]+)\.orig\.tar\..*/\1/')
dpkg --compare-versions "$version" ge "$MIN_VERSION" || die "trixie's criu is $version, older than $MIN_VERSION"

say "installing build dependencies"
apt-get update -q "${APT_WAIT[@]}" >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${APT_WAIT[@]}" \
    build-essential pkg-config xz-utils \
    libbsd-dev libcap-dev libgnutls28-dev libnet1-dev libnftables-dev libnl-3-dev libprotobuf-c-dev \
    libprotobuf-dev protobuf-c-compiler protobuf-compiler uuid-dev python3-protobuf libaio-dev >/dev/null

say "building CRIU $version (make -j$(nproc) criu, about 30 s)"
tar -xf "$tarball" -C "$build/src"
srcdir=$(ls -d "$build"/src/criu-*/ | head -n1)
for p in $patches; do
    patch -p1 -d "$srcdir" < "$patch_dir/$p" >/dev/null || die "applying scripts/criu-patches/$p failed"
done
if ! make -C "$srcdir" -j"$(nproc)" criu RUNDIR="$RUNDIR" >"$build/make.log" 2>&1; then
    tail -n 30 "$build/make.log" >&2
    die "building CRIU $version failed (log above)"
fi

target="$CACHE/criu-$version"
rm -rf "$target.partial"
mkdir -p -m 0755 "$target.partial"
install -m 0755 "$srcdir/criu/criu" "$target.partial/criu"
echo "CRIU $version built from Debian trixie's criu_$version.orig tarball, RUNDIR=$RUNDIR, patches: $patches" > "$target.partial/SOURCE"
rm -rf "$target"
mv "$target.partial" "$target"

usable "$target/criu" || { "$target/criu" check >&2 || true; die "the CRIU just built does not pass 'criu check'"; }
say "CRIU $version is ready at $target/criu in $(( $(date +%s) - started )) s (criu check: looks good)"
