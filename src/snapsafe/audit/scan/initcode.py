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
from dataclasses import dataclass, field, replace

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
MUTATORS = frozenset(
    {"append", "appendleft", "extend", "add", "update", "insert", "setdefault", "put", "put_nowait", "__setitem__"}
)
#: methods that, called in an after-restore hook, renew the object they are called on
_RENEWERS = MUTATORS | {"seed", "setstate", "set_state", "fill", "connect", "reconnect", "reset", "refresh", "clear"}
_CONSTRUCTORS = ("__new__", "__init__", "__post_init__")
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_Function = ast.FunctionDef | ast.AsyncFunctionDef
_TRIES = tuple(t for t in (ast.Try, getattr(ast, "TryStar", None)) if t is not None)  # try-star: 3.11+


@dataclass(frozen=True)
class _Use:
    """How the value of the expression being walked is used (see :class:`InitExpr`)."""

    kept: bool = False
    targets: tuple[str, ...] = ()
    in_with: bool = False
    where: str | None = None  # "default", else the scope's kind
    enclosing: tuple[str | None, ...] = ()
    repaired: bool = False

    def dropped(self) -> _Use:
        return replace(self, kept=False, targets=(), repaired=False)


_DROPPED = _Use()


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
        self.hooks: set[_Function] = set()
        self.renewed: set[str] = set()  # module globals that after-restore hooks renew
        self.visited: set[ast.AST] = set()

    def run(self) -> list[InitExpr]:
        collect_imports(self.tree.body, self.module)
        self._find_hooks()
        self._block(self.tree.body, _Ctx(self.module, "module"))
        return self.found

    # -- after-restore hooks: never init, even when init code also calls them once

    def _find_hooks(self) -> None:
        defs: dict[str, _Function] = {}
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
        for hook in self.hooks:
            self.renewed |= _renewed_names(hook)

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
                self._expr(stmt.value, ctx, _Use(kept=True))
        elif isinstance(stmt, (ast.With, ast.AsyncWith)):
            for item in stmt.items:
                targets = _target_names(item.optional_vars) if item.optional_vars else ()
                kept = item.optional_vars is not None and self._stores([item.optional_vars], ctx)
                use = _Use(kept=kept, targets=targets, in_with=True)
                self._expr(item.context_expr, ctx, use)
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
        elif isinstance(stmt, _TRIES):
            self._block(stmt.body, ctx)
            for handler in stmt.handlers:
                if handler.type is not None:
                    self._expr(handler.type, ctx)
                self._block(handler.body, ctx)
            self._block(stmt.orelse, ctx)
            self._block(stmt.finalbody, ctx)
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
            self._expr(default, ctx, _Use(kept=True, targets=(arg.arg,), where="default"))

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
        repaired = any(self._repaired(_root(t), ctx) for t in targets)
        self._expr(stmt.value, ctx, _Use(kept=self._stores(targets, ctx), targets=names, repaired=repaired))
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

    def _repaired(self, name: str | None, ctx: _Ctx) -> bool:
        """Is ``name`` a module global that an after-restore hook renews?"""
        if name is None or name not in self.renewed:
            return False
        return ctx.kind == "module" or name in ctx.escaping  # in a function: declared global

    def _bind(self, target: ast.expr, value: ast.expr | None, ctx: _Ctx) -> None:
        key = dotted(target)
        if key is not None and isinstance(value, ast.Constant) and isinstance(ctx.scope.lookup(key)[1], str):
            return  # ``except ImportError: np = None`` is a fallback; the import is what matters
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
        if not isinstance(value, ast.Call):
            self._expr(value, ctx)
            return
        stores = (isinstance(value.func, ast.Attribute) and value.func.attr in MUTATORS) or (
            isinstance(value.func, ast.Name) and value.func.id == "setattr"
        )
        owner = _root(value.func.value) if isinstance(value.func, ast.Attribute) else None
        args = _Use(kept=True, repaired=self._repaired(owner, ctx)) if stores else _Use()
        self._call(value, ctx, _Use(), args)

    # -- expressions

    def _expr(self, node: ast.expr, ctx: _Ctx, use: _Use = _DROPPED) -> None:
        if isinstance(node, ast.Call):
            self._call(node, ctx, use, use)
            return
        inner = replace(use, in_with=False)  # only the context expression itself is closed by ``with``
        if isinstance(node, ast.Lambda):  # the body runs later; the defaults run now
            self._defaults(node.args, ctx)
        elif isinstance(node, ast.NamedExpr):  # ``(x := ...)`` assigns like ``x = ...``
            value = replace(
                inner,
                kept=self._stores([node.target], ctx),
                targets=(node.target.id,),
                repaired=self._repaired(node.target.id, ctx),
            )
            self._expr(node.value, ctx, value)
            self._bind(node.target, node.value, ctx)
        elif isinstance(node, ast.Subscript):
            self._emit(node, qualname(node.value, ctx.scope), ctx, use)
            self._expr(node.value, ctx, inner)
            self._expr(node.slice, ctx, inner.dropped())
        else:
            for child, child_kept in _children(node, use.kept):
                self._expr(child, ctx, inner if child_kept else inner.dropped())

    def _call(self, node: ast.Call, ctx: _Ctx, use: _Use, args: _Use) -> None:
        """A call whose value is used as ``use`` says and whose arguments as ``args`` says."""
        name = qualname(node.func, ctx.scope)
        self._emit(node, name, ctx, use)
        self._follow(node, ctx)
        self._expr(node.func, ctx, replace(use, in_with=False))
        args = replace(args, in_with=False, enclosing=(name, *args.enclosing))
        for arg in node.args:
            self._expr(arg, ctx, args)
        for kw in node.keywords:
            named = replace(args, targets=(*args.targets, kw.arg)) if kw.arg and args.kept else args
            self._expr(kw.value, ctx, named)

    def _emit(self, node: ast.expr, name: str | None, ctx: _Ctx, use: _Use) -> None:
        self.found.append(
            InitExpr(
                node=node,
                qualname=name,
                kept=use.kept,
                targets=use.targets,
                in_with=use.in_with,
                enclosing=use.enclosing,
                via=ctx.via,
                where=use.where or ctx.kind,
                repaired=use.repaired,
            )
        )

    # -- following calls into same-file functions

    def _follow(self, call: ast.Call, ctx: _Ctx) -> None:
        func = call.func
        if isinstance(func, ast.Name) and func.id == "cls" and ctx.cls is not None:
            found: Local | None = Local(ctx.cls)  # cls() in a classmethod constructs the class
        else:
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


def _root(node: ast.expr) -> str | None:
    """``X`` for ``X``, ``X.a.b``, ``X[k]``, ``X.a[k].b``."""
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _renewed_names(hook: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """Globals an after-restore hook renews: reassigns (``global X``), stores into, or reseeds."""
    names: set[str] = set()
    for node in _walk_body(hook):
        if isinstance(node, ast.Global):
            names.update(node.names)
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            leaves = [leaf for t in targets for leaf in _flat_targets(t) if not isinstance(leaf, ast.Name)]
            names.update(r for r in map(_root, leaves) if r)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _RENEWERS:
            root = _root(node.func.value)
            if root:
                names.add(root)
    return names


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
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in MUTATORS:
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
