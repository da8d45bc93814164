"""`snapsafe audit`: compare fingerprints of cold starts with those of restored clones.

A value that differs between cold starts (so it is meant to be unique per process) but is identical
in two or more clones is uniqueness lost to cloning. Values that are the same in every cold start
are constants, never findings; so are low-entropy values (booleans, small numbers such as the
milliseconds left, very short strings), which repeat by chance. Findings are grouped:

- ``snapsafe-bug``: a built-in restorer covers the value, yet clones share it;
- ``restorer-disabled``: the user switched the responsible restorer off;
- ``user``: the handler's own response (e.g. an id made at init), with its JSON path;
- ``known``: shared by design (the string hash secret): listed, never failing.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from snapsafe.agent.fingerprint import REPAIRED_BY, SHARED_KEYS
from snapsafe.engines.base import CloneFailed, Snapshot
from snapsafe.engines.base import InitError as _InitError

CATEGORIES = ("snapsafe-bug", "restorer-disabled", "user", "known")


@dataclasses.dataclass
class Finding:
    key: str
    category: str
    clones: list[str]  # the clones that share one value
    value: Any
    cold_values: list[Any]
    json_path: str | None = None
    note: str = ""

    @property
    def failing(self) -> bool:
        return self.category != "known"


@dataclasses.dataclass
class Report:
    compared: int
    findings: list[Finding]
    cold: int
    clones: int
    constants: int

    @property
    def failing(self) -> list[Finding]:
        return [f for f in self.findings if f.failing]


def _base(key: str) -> str:
    return key.split(":", 1)[0]


def categorise(key: str, disabled: Iterable[str]) -> tuple[str, str]:
    base = _base(key)
    if key in SHARED_KEYS:
        from snapsafe.restorers import SHARED_BY_DESIGN

        name = SHARED_KEYS[key]
        what = next((s["what"] for s in SHARED_BY_DESIGN if s["name"] == name), name)
        return "known", what
    if base in REPAIRED_BY:
        restorer = REPAIRED_BY[base]
        if restorer is not None and restorer in set(disabled):
            return "restorer-disabled", f"the {restorer!r} restorer was switched off"
        source = f"the {restorer!r} restorer" if restorer else "the kernel RNG"
        return "snapsafe-bug", f"{source} should make this unique in every clone"
    return "user", "a value of the handler's response that every cold start makes anew"


#: Numbers this small (counters, milliseconds left, HTTP statuses) repeat by chance between
#: processes; a clone sharing one proves nothing, so they are not compared.
LOW_ENTROPY_LIMIT = 2**20


def low_entropy(value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, int):
        return abs(value) < LOW_ENTROPY_LIMIT
    if isinstance(value, float):
        return value.is_integer() and abs(value) < LOW_ENTROPY_LIMIT
    return isinstance(value, str) and len(value) < 4


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=repr)


def analyse(cold: list[dict[str, Any]], clones: list[tuple[str, dict[str, Any]]],
            disabled: Iterable[str] = ()) -> Report:
    disabled = set(disabled)
    keys = sorted({k for fp in cold for k in fp} | {k for _, fp in clones for k in fp})
    findings: list[Finding] = []
    constants = 0
    for key in keys:
        cold_values = [fp[key] for fp in cold if key in fp]
        if any(low_entropy(v) for v in cold_values):
            constants += 1  # too few possible values to tell cloning from chance
            continue
        if len({_canonical(v) for v in cold_values}) < 2:
            constants += 1  # the same in every cold start (or seen once): a constant, not a finding
            continue
        groups: dict[str, list[str]] = defaultdict(list)
        values: dict[str, Any] = {}
        for clone_id, fp in clones:
            if key in fp:
                canon = _canonical(fp[key])
                groups[canon].append(clone_id)
                values[canon] = fp[key]
        for canon, sharing in groups.items():
            if len(sharing) >= 2:
                category, note = categorise(key, disabled)
                findings.append(Finding(key=key, category=category, clones=sharing, value=values[canon],
                                        cold_values=cold_values, note=note,
                                        json_path=key[len("response:"):] if key.startswith("response:") else None))
    order = {c: i for i, c in enumerate(CATEGORIES)}
    findings.sort(key=lambda f: (order[f.category], f.key))
    return Report(compared=len(keys), findings=findings, cold=len(cold), clones=len(clones), constants=constants)


def cold_fingerprints(target: str, event: Any, count: int, env: dict[str, str] | None = None,
                      timeout: float = 300, cwd: str | None = None) -> list[dict[str, Any]]:
    """Run ``count`` ordinary processes of ``target`` (no snapshot) and collect their fingerprints."""
    import os

    full_env = dict(os.environ)
    full_env.pop("SNAPSAFE_SYSGENID_PATH", None)
    full_env.update(env or {})
    prints = []
    for _ in range(count):
        proc = subprocess.run([sys.executable, "-m", "snapsafe.agent.cold", target, json.dumps(event)],
                              capture_output=True, text=True, timeout=timeout, env=full_env, cwd=cwd)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise _InitError(f"{target}: {last}", error_type="Runtime.InitError", details=proc.stderr)
        prints.append(json.loads(proc.stdout.splitlines()[-1])["fingerprint"])
    return prints


def clone_fingerprints(snapshot: Snapshot, event: Any, count: int,
                       timeout: float) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    """Restore ``count`` clones (alive together) and collect each one's fingerprint; plus errors."""
    clones = []
    prints: list[tuple[str, dict[str, Any]]] = []
    errors = []
    try:
        for _ in range(count):
            try:
                clone = snapshot.restore()
                clones.append(clone)
                result = clone.invoke(event, timeout=timeout, fingerprint=True)
            except CloneFailed as err:
                errors.append(str(err))
                continue
            if result.fingerprint is not None:
                prints.append((clone.id, result.fingerprint))
    finally:
        for clone in clones:
            clone.close()
    return prints, errors
