"""Today's date, from one injectable clock: every rule that depends on "today" (the defaults of dated writes,
the current value of a timeline) reads it here, so a test can move the calendar (README.md, "Dates")."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator


def _utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


_source: Callable[[], dt.date] = _utc_today


def today() -> dt.date:
    """The calendar date (UTC) the services take for "today"."""
    return _source()


@contextlib.contextmanager
def frozen(day: dt.date) -> Iterator[None]:
    """Within the block, today is ``day`` (for tests and the demo loader); the real date after it."""
    global _source
    before, _source = _source, lambda: day
    try:
        yield
    finally:
        _source = before
