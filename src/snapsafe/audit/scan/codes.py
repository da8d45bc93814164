"""The one table of rule codes. A code, once given, keeps its meaning (like ruff's codes.rs)."""

from __future__ import annotations

from .model import Rule
from .rules.connection_at_init import ConnectionAtInit
from .rules.prng_at_init import PrngAtInit
from .rules.secret_at_init import SecretAtInit
from .rules.thread_at_init import ThreadAtInit
from .rules.timestamp_at_init import TimestampAtInit
from .rules.unique_value_at_init import UniqueValueAtInit

PREFIX = "SNAP"

#: code -> rule class, in code order
RULES: dict[str, type[Rule]] = {
    "SNAP001": PrngAtInit,
    "SNAP002": UniqueValueAtInit,
    "SNAP003": TimestampAtInit,
    "SNAP004": ConnectionAtInit,
    "SNAP005": SecretAtInit,
    "SNAP006": ThreadAtInit,
}

#: not a rule: a file that does not parse. Always reported, and it makes the exit code 2.
SYNTAX_ERROR = "SNAP000"
SYNTAX_ERROR_NAME = "syntax-error"


class UnknownCodeError(ValueError):
    """A --select/--ignore entry that names no rule."""


def parse_codes(text: str | None) -> list[str]:
    """``"SNAP001, snap002"`` -> ``["SNAP001", "SNAP002"]``; each entry must name at least one rule."""
    if text is None:
        return []
    entries = [part.strip().upper() for part in text.replace(" ", ",").split(",") if part.strip()]
    for entry in entries:
        known = entry.startswith(PREFIX) and any(code.startswith(entry) for code in RULES)
        if entry != "ALL" and not known:
            known_codes = ", ".join(RULES)
            raise UnknownCodeError(f"unknown rule code {entry!r} (known: {known_codes}, or a prefix such as SNAP00)")
    return entries


def select_codes(select: str | None = None, ignore: str | None = None) -> list[str]:
    """The codes to check: those matching ``select`` (default all), minus those matching ``ignore``.

    Entries are codes or prefixes (``SNAP00``, ``SNAP``) or ``ALL``, separated by commas.
    """
    chosen = parse_codes(select) or ["ALL"]
    dropped = parse_codes(ignore)

    def hit(code: str, entries: list[str]) -> bool:
        return any(entry == "ALL" or code.startswith(entry) for entry in entries)

    return [code for code in RULES if hit(code, chosen) and not hit(code, dropped)]
