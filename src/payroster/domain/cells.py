"""Spreadsheet cells that a spreadsheet would run: neutralised on the way out, restored on the way in.

A cell beginning with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read by Excel, LibreOffice and
Google Sheets as a formula (CSV injection), so every export writes it behind a single quote, as OWASP's CSV
injection advice says. A value that itself begins with a quote gets one too, so that :func:`restore` can tell
the two apart: every exported cell comes back as the value it was (README.md, "Exports").
"""

from __future__ import annotations

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_QUOTED = (*TRIGGERS, "'")


def neutralise(value: str) -> str:
    """``value`` as an export writes it: behind a quote when a spreadsheet would run it (or it begins with one)."""
    return "'" + value if value.startswith(_QUOTED) else value


def restore(value: str) -> str:
    """The value an exported cell holds: one leading quote dropped when :func:`neutralise` put it there."""
    return value[1:] if value.startswith("'") and value[1:].startswith(_QUOTED) else value
