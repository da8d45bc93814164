"""One small renderer per output format: ``render(result) -> str``."""

from __future__ import annotations

from collections.abc import Callable

from ..engine import ScanResult
from . import json, sarif, text

RENDERERS: dict[str, Callable[[ScanResult], str]] = {
    "text": text.render,
    "json": json.render,
    "sarif": sarif.render,
}
