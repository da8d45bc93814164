"""Before-snapshot and after-restore hooks, in the order AWS Lambda SnapStart and CRaC use.

Before-snapshot hooks run last-registered first; after-restore hooks run first-registered first.
Hooks registered with ``snapshot_restore_py`` (Lambda SnapStart's hook package) run too: the two
registries form one list, snapsafe's entries first, so before-snapshot runs
``reversed(snapshot_restore_py) + reversed(snapsafe)`` and after-restore runs
``snapsafe + snapshot_restore_py``. ``snapshot_restore_py`` is looked up only when hooks run,
so importing snapsafe stays cheap.

A hook that raises stops the sequence; the error is a :class:`HookError` that names the hook and
carries Lambda's error type.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["HookError", "after_restore", "before_snapshot", "run_after_restore", "run_before_snapshot"]

F = TypeVar("F", bound=Callable[..., Any])
_Entry = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]

BEFORE_SNAPSHOT_ERROR = "Runtime.BeforeSnapshotError"
AFTER_RESTORE_ERROR = "Runtime.AfterRestoreError"

_before: list[_Entry] = []
_after: list[_Entry] = []


class HookError(RuntimeError):
    """A hook raised. ``error_type`` is Lambda's (``Runtime.BeforeSnapshotError`` / ``...AfterRestoreError``)."""

    def __init__(self, error_type: str, hook: Callable[..., Any], cause: BaseException) -> None:
        self.error_type = error_type
        self.hook_name = _name(hook)
        self.cause = cause
        phase = "before-snapshot" if error_type == BEFORE_SNAPSHOT_ERROR else "after-restore"
        super().__init__(f"{error_type}: {phase} hook {self.hook_name} raised {type(cause).__name__}: {cause}")


def _name(fn: Callable[..., Any]) -> str:
    module = getattr(fn, "__module__", None) or "?"
    qualname = getattr(fn, "__qualname__", None) or repr(fn)
    return f"{module}.{qualname}"


def _register(registry: list[_Entry], what: str, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if not callable(fn):
        raise TypeError(f"@snapsafe.{what} needs a callable, got {type(fn).__name__}")
    registry.append((fn, args, kwargs))
    return fn


def before_snapshot(fn: F, *args: Any, **kwargs: Any) -> F:
    """Register ``fn(*args, **kwargs)`` to run before every snapshot (decorator or call)."""
    return _register(_before, "before_snapshot", fn, args, kwargs)


def after_restore(fn: F, *args: Any, **kwargs: Any) -> F:
    """Register ``fn(*args, **kwargs)`` to run in every clone after restore (decorator or call)."""
    return _register(_after, "after_restore", fn, args, kwargs)


def _snapstart_registry(which: str) -> list[_Entry]:
    """Entries of ``snapshot_restore_py``, if that package is installed (imported only here)."""
    module = sys.modules.get("snapshot_restore_py")
    if module is None:
        try:
            import snapshot_restore_py as module  # type: ignore[import-not-found, no-redef]
        except ImportError:
            return []
    getter = getattr(module, f"get_{which}", None)
    return list(getter()) if getter is not None else []


def before_snapshot_hooks() -> list[_Entry]:
    """The before-snapshot hooks in the order they run."""
    return list(reversed(_snapstart_registry("before_snapshot"))) + list(reversed(_before))


def after_restore_hooks() -> list[_Entry]:
    """The after-restore hooks in the order they run."""
    return list(_after) + _snapstart_registry("after_restore")


def _run(entries: list[_Entry], error_type: str) -> int:
    for fn, args, kwargs in entries:
        try:
            fn(*args, **kwargs)
        except Exception as exc:
            raise HookError(error_type, fn, exc) from exc
    return len(entries)


def run_before_snapshot() -> int:
    """Run every before-snapshot hook; returns how many ran. Raises :class:`HookError`."""
    return _run(before_snapshot_hooks(), BEFORE_SNAPSHOT_ERROR)


def run_after_restore() -> int:
    """Run every after-restore hook; returns how many ran. Raises :class:`HookError`."""
    return _run(after_restore_hooks(), AFTER_RESTORE_ERROR)
