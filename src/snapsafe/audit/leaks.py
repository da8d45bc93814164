"""Search snapshot memory for byte strings: the proof that wipe-on-suspend works.

Sources are what each engine provides: the fork template's memory read through ``/proc/PID/mem``
(its readable mappings), CRIU page images, a VM's RAM file. The search reads in chunks that overlap
by ``len(needle) - 1`` bytes, so no occurrence across a chunk boundary is missed.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

CHUNK = 4 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class MemorySource:
    """``path`` read whole, or only ``ranges`` of (offset, length) (e.g. /proc/PID/mem mappings)."""

    label: str
    path: str
    ranges: tuple[tuple[int, int], ...] | None = None

    def size(self) -> int:
        if self.ranges is None:
            return os.path.getsize(self.path)
        return sum(length for _, length in self.ranges)


@dataclasses.dataclass(frozen=True)
class Hit:
    needle: str
    source: str
    offset: int  # file offset, or virtual address for process memory


def process_memory(pid: int, label: str = "") -> MemorySource:
    """The readable mappings of a live process (needs ptrace rights over it: root, or its parent)."""
    ranges = []
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            fields = line.split()
            start, end = (int(x, 16) for x in fields[0].split("-"))
            name = fields[5] if len(fields) > 5 else ""
            if fields[1].startswith("r") and name not in ("[vvar]", "[vvar_vclock]", "[vsyscall]"):
                ranges.append((start, end - start))
    return MemorySource(label or f"process {pid}", f"/proc/{pid}/mem", tuple(ranges))


def file_sources(paths: Iterable[str | Path]) -> list[MemorySource]:
    return [MemorySource(str(p), str(p)) for p in paths]


def _chunks(source: MemorySource, overlap: int) -> Iterator[tuple[int, bytes]]:
    ranges = source.ranges if source.ranges is not None else ((0, source.size()),)
    fd = os.open(source.path, os.O_RDONLY)
    try:
        for start, length in ranges:
            pos, end, tail = start, start + length, b""
            while pos < end:
                try:
                    data = os.pread(fd, min(CHUNK, end - pos), pos)
                except OSError:  # an unreadable mapping (e.g. guard pages): skip the rest of it
                    break
                if not data:
                    break
                yield pos - len(tail), tail + data
                tail = data[-overlap:] if overlap else b""
                pos += len(data)
    finally:
        os.close(fd)


def search(sources: Iterable[MemorySource], needles: dict[str, bytes]) -> list[Hit]:
    """Every occurrence of every needle (name -> bytes) in the sources."""
    if not needles:
        return []
    overlap = max(len(n) for n in needles.values()) - 1
    hits = []
    for source in sources:
        seen: set[tuple[str, int]] = set()
        for base, data in _chunks(source, overlap):
            for name, needle in needles.items():
                i = data.find(needle)
                while i != -1:
                    if (name, base + i) not in seen:
                        seen.add((name, base + i))
                        hits.append(Hit(name, source.label, base + i))
                    i = data.find(needle, i + 1)
    return hits


@dataclasses.dataclass
class LeakCheck:
    """Outcome of the canary check: the secret canary must be absent, the control present."""

    secret_hits: list[Hit]
    control_hits: list[Hit]
    secrets_planted: int
    bytes_searched: int

    @property
    def passed(self) -> bool:
        return not self.secret_hits and bool(self.control_hits)

    def describe(self) -> str:
        if self.secret_hits:
            where = ", ".join(f"{h.source}@{h.offset:#x}" for h in self.secret_hits[:5])
            return f"LEAK: the secret canary is in the snapshot {len(self.secret_hits)} time(s): {where}"
        if not self.control_hits:
            return ("INCONCLUSIVE: the control canary planted in ordinary memory was not found, so the search "
                    "cannot be trusted to find anything")
        return (f"ok: the secret canary ({self.secrets_planted} Secret(s) filled before the snapshot) is not in "
                f"the {self.bytes_searched / 2**20:.1f} MiB of snapshot memory; the control canary was found "
                f"{len(self.control_hits)} time(s)")


def canary_check(engine_name: str, target: str, options_kwargs: dict | None = None) -> LeakCheck:
    """Start ``target``, fill its Secrets with a fresh canary, snapshot, and search the snapshot."""
    from snapsafe.engines import Options, get_engine

    secret, control = os.urandom(16).hex(), os.urandom(16).hex()
    options = Options(output=None, leak_canaries=(secret, control), **(options_kwargs or {}))
    with get_engine(engine_name, options).start(target) as template, template.snapshot() as snapshot:
        sources = snapshot.memory_sources()
        ready = getattr(snapshot, "ready", None) or getattr(template, "ready", None)
        hits = search(sources, {"secret": bytes.fromhex(secret), "control": bytes.fromhex(control)})
        return LeakCheck(secret_hits=[h for h in hits if h.needle == "secret"],
                         control_hits=[h for h in hits if h.needle == "control"],
                         secrets_planted=getattr(ready, "canaries_planted", 0),
                         bytes_searched=sum(s.size() for s in sources))
