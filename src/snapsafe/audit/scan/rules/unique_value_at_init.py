"""A unique or random value is computed at init and kept.

## What it does
Checks for unique identifiers and random values computed in code that runs at initialisation and
kept in a module global, a class attribute, a default argument, an attribute or container, or the
return value of a function called at init: `uuid.uuid1()`/`uuid4()` (and `uuid6`-`uuid8`),
`os.urandom()`, `secrets.token_bytes()`/`token_hex()`/`token_urlsafe()`/`choice()`/..., the draws of
the `random` module (`random.random()`, `randint()`, `choice()`, `getrandbits()`, `shuffle()`, ...)
and of `numpy.random` (`np.random.rand()`, ...), and temporary file names (`tempfile.mktemp()`,
`mkdtemp()`, `mkstemp()`, `NamedTemporaryFile()`, `TemporaryDirectory()`).

## Why is this bad?
The value is computed once, in the template, and every clone restored from the snapshot holds the
same one. An "instance id" is no longer unique, a "random" nonce or salt repeats across clones, and
a temporary file name is shared by every clone (in a forked clone, literally the same file).

## Example
```python
import uuid


INSTANCE_ID = uuid.uuid4()


def handler(event, context, request_id=uuid.uuid4().hex):
    return {"instance": str(INSTANCE_ID), "request": request_id}
```

## Use instead
Compute the value where it is used, or refresh it after every restore:
```python
import uuid

import snapsafe

INSTANCE_ID = uuid.uuid4()


@snapsafe.after_restore
def new_identity():
    global INSTANCE_ID
    INSTANCE_ID = uuid.uuid4()


def handler(event, context, request_id=None):
    request_id = request_id or uuid.uuid4().hex
    return {"instance": str(INSTANCE_ID), "request": request_id}
```

## Notes
A value used and dropped at init (`print(uuid.uuid4())`) is not reported, nor is a temporary
file or directory used in a `with` block, which is removed before init ends. Random bytes stored
under a secret-like name (`KEY = os.urandom(32)`) are reported as SNAP005 instead. `uuid3` and
`uuid5` are deterministic and not reported. Values passed to `snapsafe.Secret(...)` are wiped
before every snapshot and not reported.
"""

from __future__ import annotations

from ..model import InitExpr, Rule
from .common import SECRET_WRAPPERS, matches, secret_like, wrapped_by

_RANDOM_DRAWS = (
    "random", "uniform", "triangular", "randint", "randrange", "choice", "choices", "sample", "shuffle",
    "getrandbits", "randbytes", "gauss", "normalvariate", "lognormvariate", "expovariate",
    "vonmisesvariate", "gammavariate", "betavariate", "paretovariate", "weibullvariate", "binomialvariate",
)
_NUMPY_NOT_DRAWS = frozenset({"seed", "default_rng", "get_state", "set_state", "get_bit_generator",
                              "set_bit_generator"})
#: values that are random bytes: under a secret-like name they are SNAP005's
RANDOM_BYTES = frozenset(
    {"os.urandom", "os.getrandom", "secrets.token_bytes", "secrets.token_hex", "secrets.token_urlsafe",
     "random.randbytes", "random.getrandbits", "secrets.randbits", "numpy.random.bytes"}
)
_IDS = frozenset({"uuid.uuid1", "uuid.uuid4", "uuid.uuid6", "uuid.uuid7", "uuid.uuid8"})
_RANDOM = frozenset(
    {"os.urandom", "os.getrandom", "secrets.token_bytes", "secrets.token_hex", "secrets.token_urlsafe",
     "secrets.randbits", "secrets.randbelow", "secrets.choice"}
    | {f"random.{d}" for d in _RANDOM_DRAWS}
    | {f"random.SystemRandom().{d}" for d in _RANDOM_DRAWS}
    | {f"secrets.SystemRandom().{d}" for d in _RANDOM_DRAWS}
)
_TEMPNAMES = frozenset(
    {"tempfile.mktemp", "tempfile.mkdtemp", "tempfile.mkstemp", "tempfile.NamedTemporaryFile",
     "tempfile.TemporaryDirectory"}
)
#: these change their argument in place, so the result is kept even when the call's value is not
_IN_PLACE = frozenset({"random.shuffle", "numpy.random.shuffle"})


def _kind(name: str) -> str | None:
    if name in _IDS:
        return "unique identifier"
    if name in _TEMPNAMES:
        return "temporary file name"
    if name in _RANDOM:
        return "random value"
    if name.startswith("numpy.random."):
        draw = name[len("numpy.random.") :]
        if draw.isidentifier() and draw.islower() and draw not in _NUMPY_NOT_DRAWS:
            return "random value"
    return None


class UniqueValueAtInit(Rule):
    name = "unique-value-at-init"
    summary = "unique or random value computed at init and kept"
    fix = "Compute the value in the handler, or recompute it in an @snapsafe.after_restore hook"

    def check(self, expr: InitExpr) -> str | None:
        name = expr.qualname
        kind = _kind(name) if name else None
        if kind is None or expr.in_with or wrapped_by(expr.enclosing, SECRET_WRAPPERS):
            return None
        if not (expr.kept or matches(name, _IN_PLACE)):
            return None
        if name in RANDOM_BYTES and any(secret_like(t) for t in expr.targets):
            return None  # a generated key: SNAP005
        return f"`{expr.display()}` computes a {kind} at init that every clone shares"
