"""A secret is loaded at init into ordinary memory.

## What it does
Checks for secrets loaded in code that runs at initialisation and kept in ordinary Python objects:
environment variables whose name suggests a key, token, password or secret
(`os.environ["API_TOKEN"]`, `os.environ.get("DB_PASSWORD")`, `os.getenv("SECRET_KEY")`), files
whose name suggests one (`open("secret.key").read()`, `Path("id_rsa").read_bytes()`,
`credentials.json`, `*.pem`), `.env` files loaded with `dotenv`, secrets fetched with
`get_secret_value()` (AWS Secrets Manager), and random bytes bound to a secret-like name
(`SIGNING_KEY = os.urandom(32)`, `token = secrets.token_hex()`).

Names count as secret-like when a word of them is `secret`, `password`, `passwd`, `passphrase`,
`credential(s)` or `creds`, or when they end in `key`, `token`, `pwd`, `salt` or `pepper`
(`API_KEY`, `GITHUB_TOKEN`, `signingKey`; not `TOKEN_URL` or `MAX_TOKENS`).

## Why is this bad?
Everything in memory at snapshot time is written into the snapshot, and the snapshot is copied,
cached and kept far longer and in more places than the process that loaded the secret. A key
generated at init is also no longer secret *to one clone*: every clone holds the same one.

## Example
```python
import os

API_TOKEN = os.environ["API_TOKEN"]
SIGNING_KEY = os.urandom(32)


def handler(event, context):
    return call_api(API_TOKEN, sign(SIGNING_KEY, event))
```

## Use instead
Keep secrets in a `snapsafe.Secret`, which is wiped before every snapshot, and fill it again after
every restore:
```python
import os

import snapsafe

API_TOKEN = snapsafe.Secret(256)
SIGNING_KEY = snapsafe.Secret(32)


@snapsafe.after_restore
def load_secrets():
    API_TOKEN.fill(os.environ["API_TOKEN"].encode())
    SIGNING_KEY.fill(os.urandom(32))


load_secrets()  # also at init, so init code can use them


def handler(event, context):
    return call_api(API_TOKEN.reveal(), sign(SIGNING_KEY.reveal(), event))
```

## Notes
Reads used and dropped at init, such as checks that a variable is set
(`if not os.getenv("API_TOKEN"): raise ...`), are not reported, and neither are values passed
straight to `snapsafe.Secret(...)`. The environment itself is part of the snapshot too: a secret
passed in an environment variable is in the snapshot whether or not the code reads it; move it
into a Secret and `os.environ.pop()` it, or fetch it from a secrets service after restore.
"""

from __future__ import annotations

import ast

from ..model import InitExpr, Rule
from .common import SECRET_WRAPPERS, first_string, secret_file, secret_like, strings, wrapped_by
from .unique_value_at_init import RANDOM_BYTES

_ENVIRON = frozenset({"os.environ", "os.environb"})
_ENV_GETTERS = frozenset({"os.getenv", "os.getenvb", "os.environ.get", "os.environ.pop", "os.environb.get"})
_OPENERS = frozenset({"open", "io.open", "codecs.open", "os.open"})
_PATH_READERS = frozenset({"read_text", "read_bytes", "open"})
_DOTENV = frozenset({"dotenv.load_dotenv", "dotenv.dotenv_values", "dotenv.main.load_dotenv"})
_SECRET_SERVICES = frozenset({"get_secret_value"})


def _what(expr: InitExpr) -> str | None:
    """A description of the secret ``expr`` loads, or None."""
    name, node = expr.qualname, expr.node
    if isinstance(node, ast.Subscript):
        key = node.slice
        if name in _ENVIRON and isinstance(key, ast.Constant) and isinstance(key.value, str):
            return f"reads secret environment variable {key.value}" if secret_like(key.value) else None
        return None
    if not isinstance(node, ast.Call):
        return None
    if name in _ENV_GETTERS:
        key_name = first_string(node)
        return f"reads secret environment variable {key_name}" if key_name and secret_like(key_name) else None
    if name in _DOTENV:
        return "loads a .env file into os.environ"
    if name in _OPENERS:
        files = [s for s in strings(node.args[0] if node.args else None) if secret_file(s)]
        return f"reads secret file {files[0]}" if files else None
    if expr.method in _PATH_READERS and isinstance(node.func, ast.Attribute):
        files = [s for s in strings(node.func.value) if secret_file(s)]
        return f"reads secret file {files[0]}" if files else None
    if expr.method in _SECRET_SERVICES:
        return "fetches a secret"
    if name in RANDOM_BYTES:
        names = [t for t in expr.targets if secret_like(t)]
        return f"generates secret {names[0]}" if names else None
    return None


class SecretAtInit(Rule):
    name = "secret-at-init"
    summary = "secret loaded at init into ordinary memory"
    fix = "Keep it in a snapsafe.Secret and fill it in an @snapsafe.after_restore hook"
    repairable = False  # refilling after restore leaves the init copy in the snapshot

    def check(self, expr: InitExpr) -> str | None:
        loads_env = expr.qualname in _DOTENV  # fills os.environ: kept whatever the call returns
        if not (expr.kept or loads_env) or wrapped_by(expr.enclosing, SECRET_WRAPPERS):
            return None
        what = _what(expr)
        if what is None:
            return None
        return f"`{expr.display()}` {what} at init and keeps it in ordinary memory; the snapshot holds a copy"
