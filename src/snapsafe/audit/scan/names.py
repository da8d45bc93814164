"""Name resolution: which module-level thing a local name or ``a.b.c`` chain stands for.

``import numpy as np`` binds ``np`` to ``numpy``; ``from random import Random as R`` binds ``R`` to
``random.Random``; ``import os.path`` binds ``os``. Assignments bind too, so after
``t = threading.Thread(...)`` the name ``t`` stands for ``threading.Thread()`` and ``t.start()``
resolves to ``threading.Thread().start``. A name bound to something unknown resolves to None, which
is how a local ``random = MyRandom()`` shadows the module.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Iterable
from dataclasses import dataclass

_BUILTINS = frozenset(dir(builtins))


@dataclass(frozen=True, eq=False)
class Local:
    """A function or class defined in the file being scanned."""

    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
    #: for a class, the qualname of its first resolvable base (a Thread subclass acts as a Thread)
    base: str | None = None


Binding = str | Local | None


class Scope:
    """Bindings of one scope, falling back to the enclosing one (functions see module globals)."""

    def __init__(self, parent: Scope | None = None) -> None:
        self.parent = parent
        self.names: dict[str, Binding] = {}
        self._dotted: set[str] = set()  # the ``a.b`` keys, few, so rebinding stays cheap

    def bind(self, key: str, value: Binding) -> None:
        self.names[key] = value
        if "." in key:
            self._dotted.add(key)
        # rebinding ``t`` forgets what ``t.x`` stood for
        stale = [k for k in self._dotted if k.startswith(key + ".")]
        for k in stale:
            del self.names[k]
            self._dotted.discard(k)

    def lookup(self, key: str) -> tuple[bool, Binding]:
        scope: Scope | None = self
        while scope is not None:
            if key in scope.names:
                return True, scope.names[key]
            scope = scope.parent
        return False, None


def dotted(node: ast.AST) -> str | None:
    """``a.b.c`` for a chain of attributes on a name, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def qualname(node: ast.AST, scope: Scope) -> str | None:
    """The resolved dotted name of an expression, or None when it is not known."""
    key = dotted(node)
    if key is not None:
        found, value = scope.lookup(key)
        if found:
            return value.base if isinstance(value, Local) else value
        if isinstance(node, ast.Name):
            return node.id if node.id in _BUILTINS else None
    if isinstance(node, ast.Attribute):
        base = qualname(node.value, scope)
        return f"{base}.{node.attr}" if base else None
    if isinstance(node, ast.Call):
        base = qualname(node.func, scope)
        return f"{base}()" if base else None
    return None


def local(node: ast.AST, scope: Scope) -> Local | None:
    """The same-file function or class a name or ``Class.method`` chain refers to, if any."""
    key = dotted(node)
    if key is None:
        return None
    found, value = scope.lookup(key)
    return value if found and isinstance(value, Local) else None


def bind_import(stmt: ast.Import | ast.ImportFrom, scope: Scope) -> None:
    if isinstance(stmt, ast.Import):
        for alias in stmt.names:
            if alias.asname:
                scope.bind(alias.asname, alias.name)
            else:  # ``import os.path`` binds ``os``
                top = alias.name.split(".")[0]
                scope.bind(top, top)
        return
    for alias in stmt.names:
        if alias.name == "*":
            continue
        name = alias.asname or alias.name
        # relative imports name this project's own modules: nothing the rules know
        scope.bind(name, f"{stmt.module}.{alias.name}" if stmt.level == 0 and stmt.module else None)


def nested_blocks(stmt: ast.stmt) -> list[list[ast.stmt]]:
    """The statement lists directly inside a compound statement (if/for/while/with/try/match)."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return []
    blocks: list[list[ast.stmt]] = [getattr(stmt, f, None) or [] for f in ("body", "orelse", "finalbody")]
    blocks += [handler.body for handler in getattr(stmt, "handlers", [])]
    blocks += [case.body for case in getattr(stmt, "cases", [])]
    return [block for block in blocks if block]


def collect_imports(body: Iterable[ast.stmt], scope: Scope) -> None:
    """Bind the imports of a block, including those nested in if/try/with, but not in defs."""
    for stmt in body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            bind_import(stmt, scope)
        for block in nested_blocks(stmt):
            collect_imports(block, scope)
