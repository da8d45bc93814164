"""Resolve and import a target: ``path/to/file.py:function`` or ``package.module:function``.

Importing the target's module *is* the initialisation phase of the function.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from typing import Any


class TargetLoadError(Exception):
    """The target cannot be loaded. ``kind`` is one of: syntax, missing, import, init, attribute, callable."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def split_target(target: str) -> tuple[str, str]:
    """``"a/b.py:handler"`` -> ``("a/b.py", "handler")``; raises ``TargetLoadError`` on bad syntax."""
    if not isinstance(target, str) or target.count(":") != 1:
        raise TargetLoadError("syntax", f"target {target!r} must look like path/to/file.py:function "
                                        "or package.module:function")
    where, name = target.rsplit(":", 1)
    if not where or not name or not name.replace(".", "_").isidentifier():
        raise TargetLoadError("syntax", f"target {target!r} must look like path/to/file.py:function "
                                        "or package.module:function")
    return where, name


def is_file_target(where: str) -> bool:
    return where.endswith(".py") or os.sep in where


def load(target: str) -> Callable[..., Any]:
    """Import the target's module and return the handler. Exceptions from init propagate as
    ``TargetLoadError("init", ...)`` chained to the original exception."""
    where, name = split_target(target)
    if is_file_target(where):
        module = _import_file(where)
    else:
        module = _import_module(where)
    obj: Any = module
    for part in name.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise TargetLoadError("attribute", f"{where} has no attribute {name!r}") from None
    if not callable(obj):
        raise TargetLoadError("callable", f"{where}:{name} is a {type(obj).__name__}, not a function")
    return obj


def _import_file(path: str) -> Any:
    full = os.path.abspath(path)
    if not os.path.isfile(full):
        raise TargetLoadError("missing", f"file {path} does not exist")
    directory = os.path.dirname(full)
    # As `python file.py` does: the file's directory comes first on sys.path, for its sibling imports.
    if directory not in sys.path:
        sys.path.insert(0, directory)
    module_name = os.path.splitext(os.path.basename(full))[0]
    spec = importlib.util.spec_from_file_location(module_name, full)
    if spec is None or spec.loader is None:
        raise TargetLoadError("import", f"cannot import {path}: not a Python source file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    _run_init(lambda: spec.loader.exec_module(module), path)  # type: ignore[union-attr]
    return module


def _import_module(name: str) -> Any:
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError) as err:
        raise TargetLoadError("missing", f"module {name} cannot be found: {err}") from err
    if spec is None:
        raise TargetLoadError("missing", f"module {name} cannot be found (not on sys.path)")
    return _run_init(lambda: importlib.import_module(name), name)


def _run_init(fn: Callable[[], Any], label: str) -> Any:
    try:
        return fn()
    except SyntaxError as err:
        raise TargetLoadError("import", f"{label} has a syntax error: {err.msg} (line {err.lineno})") from err
    except ImportError as err:
        raise TargetLoadError("import", f"{label} failed to import: {type(err).__name__}: {err}") from err
    except BaseException as err:  # noqa: B902 - init may raise anything, SystemExit included
        if isinstance(err, KeyboardInterrupt):
            raise
        raise TargetLoadError("init", f"{label} raised during initialisation: {type(err).__name__}: {err}") from err
