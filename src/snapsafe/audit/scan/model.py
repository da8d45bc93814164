"""The types shared by the engine, the rules and the renderers."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class InitExpr:
    """A call or subscript that runs at init, with what the engine knows of its context.

    ``qualname`` is the resolved dotted name of the callee (``numpy.random.default_rng``) or, for a
    subscript, of the container (``os.environ``); ``()`` marks a call in the chain, so
    ``threading.Thread(...).start()`` is ``threading.Thread().start``. ``None`` when unknown.
    """

    node: ast.expr
    qualname: str | None
    #: the value is stored where it outlives init: a global, class attribute, default argument,
    #: attribute, container, or the return value of a function called at init
    kept: bool = False
    #: names it is stored under (assignment targets, parameter or keyword names)
    targets: tuple[str, ...] = ()
    #: it is the context expression of a ``with`` statement (closed before init ends)
    in_with: bool = False
    #: qualnames of the calls it is an argument of, innermost first (None where unknown)
    enclosing: tuple[str | None, ...] = ()
    #: the same-file function through which it runs at init, e.g. ``load()``
    via: str | None = None
    #: "module", "class", "function" or "default" (a default argument)
    where: str = "module"
    #: it is stored in a module global that an after-restore hook reassigns, stores into or reseeds
    #: (``RNG.seed()``, ``global X; X = ...``, ``CONN.update(...)``): every clone renews it
    repaired: bool = False

    @property
    def method(self) -> str | None:
        """The attribute called, for ``x.method(...)`` calls whatever ``x`` is."""
        if isinstance(self.node, ast.Call) and isinstance(self.node.func, ast.Attribute):
            return self.node.func.attr
        return None

    def display(self) -> str:
        """How messages show the expression: the resolved name, with ``(...)`` for calls."""
        name = (self.qualname or "?").replace("()", "(...)")
        if isinstance(self.node, ast.Call):
            return f"{name}()"
        key = getattr(self.node, "slice", None)
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            return f'{name}["{key.value}"]'
        return f"{name}[...]"


class Rule:
    """One check. The code lives in :mod:`snapsafe.audit.scan.codes`, not here (as in ruff)."""

    #: kebab-case name, stable like the code
    name: ClassVar[str]
    #: one line: what the rule reports
    summary: ClassVar[str]
    #: one line: how to fix it (the JSON and SARIF ``fix`` hint)
    fix: ClassVar[str]
    #: an after-restore hook that renews the global holding the value fixes the problem (the engine
    #: then drops the finding); not so for secrets, whose init copy is in the snapshot regardless
    repairable: ClassVar[bool] = True

    def check(self, expr: InitExpr) -> str | None:
        """The message for ``expr`` if it is a finding, else None."""
        raise NotImplementedError


@dataclass(frozen=True, order=True)
class Finding:
    """One reported problem. Lines and columns are 1-based; columns count characters."""

    path: str
    line: int
    col: int
    code: str
    message: str
    rule: str = ""
    fix: str = ""
    end_line: int = 0
    end_col: int = 0
