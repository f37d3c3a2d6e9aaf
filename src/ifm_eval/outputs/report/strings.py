"""The report's German and English texts, all in ONE data file (``strings.yaml`` next to
this module), keyed by id, with ``{placeholders}`` for computed values.

:func:`text` returns the text of an id in a language with its placeholders filled; a
missing id or language, a placeholder left unfilled or a value given that the text does not
use is an error (so a typo cannot silently drop a number from the report).
"""

from __future__ import annotations

import string
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

STRINGS_FILE = Path(__file__).with_name("strings.yaml")
LANGUAGES = ("de", "en")


class ReportStringError(KeyError):
    """A report text id, language or placeholder does not match strings.yaml."""


@lru_cache(maxsize=1)
def strings() -> dict[str, dict[str, str]]:
    """All texts: id -> {language: text}."""
    data = yaml.safe_load(STRINGS_FILE.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ReportStringError(f"{STRINGS_FILE}: expected a mapping of ids")
    return data


def placeholders(template: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}


def text(key: str, lang: str, **values: Any) -> str:
    """The text ``key`` in ``lang`` with ``values`` filled in (exactly its placeholders)."""
    entry = strings().get(key)
    if entry is None:
        raise ReportStringError(f"report text {key!r} is not in {STRINGS_FILE.name}")
    if lang not in entry:
        raise ReportStringError(f"report text {key!r} has no {lang!r} version")
    template = entry[lang]
    need = placeholders(template)
    if need != set(values):
        raise ReportStringError(f"report text {key!r} ({lang}): placeholders {sorted(need)}, "
                                f"given {sorted(values)}")
    return template.format(**values)
