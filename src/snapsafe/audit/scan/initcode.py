"""Which code of a module runs at init, and every call and subscript it evaluates.

The walk follows what the interpreter does when it imports the module (the init a snapshot captures):

- module-level statements run, except the body of ``if __name__ == "__main__":`` (a script's entry
  point, not part of an import);
- class bodies run, and so do decorators and default arguments of every ``def`` reached;
- the body of a function or method *defined in the same file* runs when init code calls it, and the
  walk follows such calls transitively: ``load()``, ``Client()`` (its ``__new__``, ``__init__``,
  ``__post_init__``), ``self.helper()``, ``Client.build()``. Calls into other modules or through
  instances of unknown type are not followed.

Not init: the bodies of functions nobody calls at init (a handler runs at invocation), lambdas, and
functions registered as after-restore hooks (``@snapsafe.after_restore``,
``snapshot_restore_py.register_after_restore``, as decorator or call), which run again in every clone.

Each evaluated call or subscript becomes an :class:`InitExpr`; whether its value is *kept* (stored
in a global, class attribute, default argument, attribute, container, or returned from a function
called at init) is decided from the statement around it. In a function, a local variable counts as
kept when it reaches a return, an attribute, a container or a ``global``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field

from .model import InitExpr
from .names import Local, Scope, bind_import, collect_imports, dotted, local, qualname

HOOK_REGISTRARS = frozenset(
    {
        "snapsafe.after_restore",
        "snapsafe.hooks.after_restore",
        "snapshot_restore_py.register_after_restore",
    }
)
#: methods that store their arguments in the object they are called on
_MUTATORS = frozenset(
    {"append", "appendleft", "extend", "add", "update", "insert", "setdefault", "put", "put_nowait", "__setitem__"}
)
_CONSTRUCTORS = ("__new__", "__init__", "__post_init__")
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


@dataclass
class _Ctx:
    scope: Scope
    kind: str  # "module" | "class" | "function"
    via: str | None = None
    cls: ast.ClassDef | None = None
    escaping: frozenset[str] = field(default_factory=frozenset)


def init_exprs(tree: ast.Module) -> list[InitExpr]:
    """Every call and subscript evaluated when ``tree`` is imported."""
    return _Walker(tree).run()


def is_main_guard(test: ast.expr) -> bool:
    """``__name__ == "__main__"`` (either way round)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    consts = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return len(names) == 1 and len(consts) == 1


class _Walker:
    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree
        self.module = Scope()
        self.found: list[InitExpr] = []
        self.hooks: set[ast.AST] = set()
        self.visited: set[ast.AST] = set()

    def run(self) -> list[InitExpr]:
        collect_imports(self.tree.body, self.module)
        self._find_hooks()
        self._block(self.tree.body, _Ctx(self.module, "module"))
        return self.found

    # -- after-restore hooks: never init, even when init code also calls them once

    def _find_hooks(self) -> None:
        defs: dict[str, ast.AST] = {}
        registered: set[str] = set()
        for node in ast.walk(self.tree):
            if isinstance(node, _FUNCTIONS):
                defs.setdefault(node.name, node)
                if any(self._is_registrar(d) for d in node.decorator_list):
                    self.hooks.add(node)
            elif isinstance(node, ast.Call) and self._is_registrar(node.func) and node.args:
                name = dotted(node.args[0])
                if name:
                    registered.add(name)
        self.hooks.update(defs[name] for name in registered if name in defs)

    def _is_registrar(self, node: ast.expr) -> bool:
        if isinstance(node, ast.Call):  # ``@register_after_restore(...)`` used as a factory
            node = node.func
        return qualname(node, self.module) in HOOK_REGISTRARS

    # -- statements

    def _block(self, body: list[ast.stmt], ctx: _Ctx) -> None:
        for stmt in body:
            self._stmt(stmt, ctx)

    def _stmt(self, stmt: ast.stmt, ctx: _Ctx) -> None:
        if isinstance(stmt, _FUNCTIONS):
            self._def(stmt, ctx)
        elif isinstance(stmt, ast.ClassDef):
            self._class(stmt, ctx)
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            bind_import(stmt, ctx.scope)
        elif isinstance(stmt, ast.If):
            if ctx.kind == "module" and is_main_guard(stmt.test):
                self._block(stmt.orelse, ctx)
                return
            self._expr(stmt.test, ctx)
            self._block(stmt.body, ctx)
            self._block(stmt.orelse, ctx)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            self._assign(stmt, ctx)
        elif isinstance(stmt, ast.Expr):
            self._expr_stmt(stmt.value, ctx)
        elif isinstance(stmt, ast.Return):
            if stmt.value is not None:
                self._expr(stmt.value, ctx, kept=True)
        elif isinstance(stmt, (ast.With, ast.AsyncWith)):
            for item in stmt.items:
                targets = _target_names(item.optional_vars) if item.optional_vars else ()
                self._expr(item.context_expr, ctx, kept=item.optional_vars is not None, targets=targets,
                           in_with=True)
                if item.optional_vars is not None:
                    self._bind(item.optional_vars, None, ctx)
            self._block(stmt.body, ctx)
        elif isinstance(stmt, (ast.For, ast.AsyncFor)):
            self._expr(stmt.iter, ctx)
            self._bind(stmt.target, None, ctx)
            self._block(stmt.body, ctx)
            self._block(stmt.orelse, ctx)
        elif isinstance(stmt, ast.While):
            self._expr(stmt.test, ctx)
            self._block(stmt.body, ctx)
            self._block(stmt.orelse, ctx)
        elif isinstance(stmt, ast.Match):
            self._expr(stmt.subject, ctx)
            for case in stmt.cases:
                if case.guard is not None:
                    self._expr(case.guard, ctx)
                self._block(case.body, ctx)
        elif hasattr(stmt, "handlers"):  # try / try-star
            self._block(stmt.body, ctx)  # type: ignore[attr-defined]
            for handler in stmt.handlers:  # type: ignore[attr-defined]
                if handler.type is not None:
                    self._expr(handler.type, ctx)
                self._block(handler.body, ctx)
            self._block(stmt.orelse, ctx)  # type: ignore[attr-defined]
            self._block(stmt.finalbody, ctx)  # type: ignore[attr-defined]
        else:  # raise, assert, delete, global, pass, ...: values used, not kept
            for child in ast.iter_child_nodes(stmt):
                if isinstance(child, ast.expr):
                    self._expr(child, ctx)

    def _def(self, fn: ast.FunctionDef | ast.AsyncFunctionDef, ctx: _Ctx) -> None:
        for decorator in fn.decorator_list:
            self._expr(decorator, ctx)
        self._defaults(fn.args, ctx)
        ctx.scope.bind(fn.name, Local(fn))

    def _defaults(self, args: ast.arguments, ctx: _Ctx) -> None:
        positional = [*args.posonlyargs, *args.args]
        pairs = list(zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True))
        pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None]
        for arg, default in pairs:
            self._expr(default, ctx, kept=True, targets=(arg.arg,), where="default")

    def _class(self, cls: ast.ClassDef, ctx: _Ctx) -> None:
        for expr in (*cls.decorator_list, *cls.bases, *(k.value for k in cls.keywords)):
            self._expr(expr, ctx)
        bases = [q for q in (qualname(b, ctx.scope) for b in cls.bases) if q]
        ctx.scope.bind(cls.name, Local(cls, bases[0] if bases else None))
        body = _Ctx(Scope(ctx.scope), "class", via=ctx.via, cls=cls)
        self._block(cls.body, body)

    def _assign(self, stmt: ast.Assign | ast.AnnAssign | ast.AugAssign, ctx: _Ctx) -> None:
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        if stmt.value is None:  # a bare annotation
            return
        names = tuple(n for t in targets for n in _target_names(t))
        self._expr(stmt.value, ctx, kept=self._stores(targets, ctx), targets=names)
        for target in targets:
            for sub in _target_subexprs(target):
                self._expr(sub, ctx)
            if not isinstance(stmt, ast.AugAssign):
                self._bind(target, stmt.value, ctx)

    def _stores(self, targets: list[ast.expr], ctx: _Ctx) -> bool:
        """Does assigning to ``targets`` keep the value beyond init?"""
        if ctx.kind != "function":
            return True  # module globals and class attributes
        for target in targets:
            for node in _flat_targets(target):
                if not isinstance(node, ast.Name) or node.id in ctx.escaping:
                    return True
        return False

    def _bind(self, target: ast.expr, value: ast.expr | None, ctx: _Ctx) -> None:
        key = dotted(target)
        if key is not None:
            bound = qualname(value, ctx.scope) if isinstance(value, ast.Call) else None
            ctx.scope.bind(key, bound)
            if isinstance(value, ast.Call) and bound is None:
                found = local(value.func, ctx.scope)
                if found is not None and isinstance(found.node, ast.ClassDef):
                    ctx.scope.bind(key, Local(found.node, found.base))  # an instance: self.method() resolves
        elif isinstance(target, (ast.Tuple, ast.List, ast.Starred)):
            for node in _flat_targets(target):
                if dotted(node) is not None:
                    self._bind(node, None, ctx)

    def _expr_stmt(self, value: ast.expr, ctx: _Ctx) -> None:
        """An expression statement: its value is dropped, unless a method stores its arguments."""
        if isinstance(value, ast.Call):
            stores = (isinstance(value.func, ast.Attribute) and value.func.attr in _MUTATORS) or (
                isinstance(value.func, ast.Name) and value.func.id == "setattr"
            )
            self._call(value, ctx, kept=False, args_kept=stores)
        else:
            self._expr(value, ctx)

    # -- expressions

    def _expr(
        self,
        node: ast.expr,
        ctx: _Ctx,
        kept: bool = False,
        targets: tuple[str, ...] = (),
        in_with: bool = False,
        where: str | None = None,
        enclosing: tuple[str | None, ...] = (),
    ) -> None:
        where = where or ctx.kind
        if isinstance(node, ast.Call):
            self._call(node, ctx, kept, kept, targets, in_with, where, enclosing)
            return
        if isinstance(node, ast.Lambda):  # the body runs later; the defaults run now
            self._defaults(node.args, ctx)
            return
        if isinstance(node, ast.NamedExpr):  # ``(x := ...)`` assigns like ``x = ...``
            stored = self._stores([node.target], ctx)
            self._expr(node.value, ctx, stored, (node.target.id,), where=where, enclosing=enclosing)
            self._bind(node.target, node.value, ctx)
            return
        if isinstance(node, ast.Subscript):
            self._emit(node, qualname(node.value, ctx.scope), ctx, kept, targets, in_with, where, enclosing)
            self._expr(node.value, ctx, kept, targets, where=where, enclosing=enclosing)
            self._expr(node.slice, ctx, where=where, enclosing=enclosing)
            return
        for child, child_kept in _children(node, kept):
            self._expr(child, ctx, child_kept, targets if child_kept else (), where=where, enclosing=enclosing)

    def _call(
        self,
        node: ast.Call,
        ctx: _Ctx,
        kept: bool,
        args_kept: bool,
        targets: tuple[str, ...] = (),
        in_with: bool = False,
        where: str | None = None,
        enclosing: tuple[str | None, ...] = (),
    ) -> None:
        where = where or ctx.kind
        name = qualname(node.func, ctx.scope)
        self._emit(node, name, ctx, kept, targets, in_with, where, enclosing)
        self._follow(node, ctx)
        self._expr(node.func, ctx, kept, targets, where=where, enclosing=enclosing)
        inner = (name, *enclosing)
        for arg in node.args:
            self._expr(arg, ctx, args_kept, targets if args_kept else (), where=where, enclosing=inner)
        for kw in node.keywords:
            names = (*targets, kw.arg) if kw.arg and args_kept else targets if args_kept else ()
            self._expr(kw.value, ctx, args_kept, names, where=where, enclosing=inner)

    def _emit(
        self,
        node: ast.expr,
        name: str | None,
        ctx: _Ctx,
        kept: bool,
        targets: tuple[str, ...],
        in_with: bool,
        where: str,
        enclosing: tuple[str | None, ...],
    ) -> None:
        self.found.append(InitExpr(node, name, kept, targets, in_with, enclosing, ctx.via, where))

    # -- following calls into same-file functions

    def _follow(self, call: ast.Call, ctx: _Ctx) -> None:
        func = call.func
        found = local(func, ctx.scope)
        if found is None and isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            # self.helper() / cls.build() inside a class reached at init
            if func.value.id in ("self", "cls") and ctx.cls is not None:
                self._method(ctx.cls, func.attr)
                return
            owner = local(func.value, ctx.scope)
            if owner is not None and isinstance(owner.node, ast.ClassDef):
                self._method(owner.node, func.attr)  # Client.build() or instance.method()
            return
        if found is None:
            return
        if isinstance(found.node, ast.ClassDef):
            for name in _CONSTRUCTORS:
                self._method(found.node, name)
        else:
            self._function(found.node, None, f"{found.node.name}()")

    def _method(self, cls: ast.ClassDef, name: str) -> None:
        for stmt in cls.body:
            if isinstance(stmt, _FUNCTIONS) and stmt.name == name:
                self._function(stmt, cls, f"{cls.name}.{name}()")

    def _function(self, fn: ast.FunctionDef | ast.AsyncFunctionDef, cls: ast.ClassDef | None, label: str) -> None:
        if fn in self.visited or fn in self.hooks:
            return
        self.visited.add(fn)
        scope = Scope(self.module)
        for arg in _all_args(fn.args):  # parameters shadow module names
            scope.bind(arg.arg, None)
        collect_imports(fn.body, scope)
        self._block(fn.body, _Ctx(scope, "function", via=label, cls=cls, escaping=_escaping(fn)))


# -- helpers on the tree


def _all_args(args: ast.arguments) -> list[ast.arg]:
    extra = [a for a in (args.vararg, args.kwarg) if a is not None]
    return [*args.posonlyargs, *args.args, *args.kwonlyargs, *extra]


def _children(node: ast.expr, kept: bool) -> Iterator[tuple[ast.expr, bool]]:
    """Sub-expressions and whether each one's value ends up in ``node``'s (kept) value."""
    if isinstance(node, ast.Compare):  # a comparison keeps a bool, not its operands
        yield node.left, False
        yield from ((c, False) for c in node.comparators)
    elif isinstance(node, ast.IfExp):
        yield node.test, False
        yield node.body, kept
        yield node.orelse, kept
    elif isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
        for gen in node.generators:
            yield gen.iter, False
            yield from ((cond, False) for cond in gen.ifs)
        if isinstance(node, ast.DictComp):
            yield node.key, kept
            yield node.value, kept
        else:
            yield node.elt, kept
    else:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                yield child, kept


def _flat_targets(target: ast.expr) -> Iterator[ast.expr]:
    if isinstance(target, (ast.Tuple, ast.List)):
        for elt in target.elts:
            yield from _flat_targets(elt)
    elif isinstance(target, ast.Starred):
        yield from _flat_targets(target.value)
    else:
        yield target


def _target_names(target: ast.expr) -> tuple[str, ...]:
    """The names a value is stored under: ``KEY``, ``self.key`` -> ``key``, ``d["key"]`` -> ``key``."""
    names = []
    for node in _flat_targets(target):
        if isinstance(node, ast.Name):
            names.append(node.id)
        elif isinstance(node, ast.Attribute):
            names.append(node.attr)
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            if isinstance(node.slice.value, str):
                names.append(node.slice.value)
    return tuple(names)


def _target_subexprs(target: ast.expr) -> Iterator[ast.expr]:
    """Expressions evaluated while assigning: ``obj`` and ``key`` in ``obj[key] = ...``."""
    for node in _flat_targets(target):
        if isinstance(node, ast.Attribute):
            yield node.value
        elif isinstance(node, ast.Subscript):
            yield node.value
            yield node.slice


def _names_in(node: ast.AST | None) -> set[str]:
    if node is None:
        return set()
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _walk_body(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> Iterator[ast.AST]:
    """The nodes of a function body, not descending into nested functions, lambdas or classes."""
    todo: list[ast.AST] = list(fn.body)
    while todo:
        node = todo.pop()
        yield node
        if not isinstance(node, (*_FUNCTIONS, ast.Lambda, ast.ClassDef)):
            todo.extend(ast.iter_child_nodes(node))


def _escaping(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> frozenset[str]:
    """Local names whose values outlive the call: returned, stored, or declared global."""
    escaping: set[str] = set()
    flows: list[tuple[set[str], set[str]]] = []  # (names assigned, names their value comes from)
    for node in _walk_body(fn):
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            escaping.update(node.names)
        elif isinstance(node, (ast.Return, ast.Yield, ast.YieldFrom)):
            escaping |= _names_in(node.value)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.NamedExpr)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            sources = _names_in(node.value)
            for target in targets:
                for leaf in _flat_targets(target):
                    if isinstance(leaf, ast.Name):
                        flows.append(({leaf.id}, sources))
                    else:  # stored in an attribute or container
                        escaping |= sources
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _MUTATORS:
            escaping |= _names_in(node)
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            flows.append((_names_in(node.optional_vars), _names_in(node.context_expr)))
    changed = True
    while changed:
        changed = False
        for assigned, sources in flows:
            if assigned & escaping and not sources <= escaping:
                escaping |= sources
                changed = True
    return frozenset(escaping)
