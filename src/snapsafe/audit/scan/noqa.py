"""``# noqa`` comments: ``# noqa`` silences every rule on its line, ``# noqa: SNAP001, SNAP004`` those codes.

Only real comments count (found with :mod:`tokenize`, so ``"# noqa"`` in a string does nothing).
Text after the codes is allowed and encouraged: ``# noqa: SNAP001 - seeded on purpose, see README``.
"""

from __future__ import annotations

import io
import re
import tokenize

_NOQA = re.compile(r"#\s*noqa(?:\s*:\s*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*))?", re.IGNORECASE)

#: line -> codes silenced there; None means all
Directives = dict[int, frozenset[str] | None]


def directives(source: str) -> Directives:
    found: Directives = {}
    if "noqa" not in source.lower():
        return found  # most files: skip tokenizing
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return found
    for tok in tokens:
        if tok.type != tokenize.COMMENT:
            continue
        match = _NOQA.search(tok.string)
        if match is None:
            continue
        line = tok.start[0]
        codes = match.group("codes")
        if codes is None or found.get(line, frozenset()) is None:
            found[line] = None
        else:
            found[line] = found.get(line, frozenset()) | frozenset(c.upper() for c in re.split(r"[\s,]+", codes))
    return found


def silenced(found: Directives, code: str, lines: tuple[int, ...]) -> bool:
    """Is ``code`` silenced on any of ``lines`` (a finding's first and last line)?"""
    for line in lines:
        if line in found:
            codes = found[line]
            if codes is None or code in codes:
                return True
    return False
