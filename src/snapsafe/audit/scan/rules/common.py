"""Helpers the rules share: recognising secret-like names and snapsafe's own sanctioned wrappers."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable

#: the values passed to these are meant for snapshots: a Secret is wiped before each snapshot, and a
#: generator given to keep_deterministic is shared on purpose
SECRET_WRAPPERS = frozenset({"snapsafe.Secret", "snapsafe.memory.Secret"})
DETERMINISTIC_WRAPPERS = frozenset({"snapsafe.keep_deterministic", "snapsafe.restorers.keep_deterministic"})

_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
#: a word that marks a secret wherever it appears in a name
_SECRET_WORDS = frozenset(
    {"secret", "secrets", "password", "passwords", "passwd", "passphrase", "credential", "credentials",
     "creds", "apikey", "privkey", "privatekey"}
)
#: words that mark a secret only as the last word: API_KEY, GITHUB_TOKEN (but not TOKEN_URL)
_SECRET_LAST_WORDS = frozenset({"key", "token", "pwd", "salt", "pepper"})
_SECRET_FILE_SUFFIXES = (".key", ".pem", ".p12", ".pfx", ".jks", ".keystore")
_SECRET_FILE_NAMES = frozenset({"id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", ".netrc", ".pgpass", ".env"})


def words(name: str) -> list[str]:
    """``DB_PASSWORD`` / ``dbPassword`` / ``db-password`` -> ``["db", "password"]``."""
    return [w.lower() for w in _WORDS.findall(name)]


def secret_like(name: str) -> bool:
    """Does a variable, attribute or environment variable name suggest a secret?"""
    parts = words(name)
    if not parts:
        return False
    if any(p in _SECRET_WORDS for p in parts):
        return True
    # a bare PWD is the working directory, not a password
    return parts[-1] in _SECRET_LAST_WORDS and not (parts == ["pwd"])


def secret_file(path: str) -> bool:
    """Does a file name suggest a key, token, password or secret (``secret.key``, ``id_rsa``)?"""
    base = path.replace("\\", "/").rsplit("/", 1)[-1].lower()
    if base in _SECRET_FILE_NAMES or base.endswith(_SECRET_FILE_SUFFIXES):
        return True
    stem = base.split(".", 1)[0] if not base.startswith(".") else base
    return bool(stem) and secret_like(stem)


def strings(node: ast.AST | None) -> list[str]:
    """Every string literal in an expression."""
    if node is None:
        return []
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def first_string(node: ast.Call) -> str | None:
    """The first argument of a call, if it is a string literal."""
    if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
        return node.args[0].value
    return None


def wrapped_by(enclosing: Iterable[str | None], wrappers: frozenset[str]) -> bool:
    return any(name in wrappers for name in enclosing)


def matches(name: str | None, names: frozenset[str], prefixes: tuple[str, ...] = ()) -> bool:
    return name is not None and (name in names or (bool(prefixes) and name.startswith(prefixes)))
