"""Checks on text that comes from outside: can it be stored, and shown."""

from __future__ import annotations

import unicodedata

# Control, format, surrogate, private-use, unassigned and line/paragraph
# separator characters: nothing a name should hold.
HIDDEN = frozenset(("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"))


def storable(text: str) -> bool:
    """Return True when text encodes as UTF-8 (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable(text: str) -> bool:
    """Return True when text has only assigned, printable characters."""
    return not any(unicodedata.category(char) in HIDDEN for char in text)
