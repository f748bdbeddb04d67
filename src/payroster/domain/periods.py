"""Timelines of dated values: periods ``[start, end)`` of calendar days, ``end`` None when open-ended
(README.md, "Dates and timelines"). Pure functions: the services load a timeline, change it here, and write
the difference.

A membership is a timeline whose value is ``True``; a user's manager and a team's parent are timelines of ids.
The periods of one timeline never overlap, and two touching periods of one value are one period.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, replace

Day = dt.date


@dataclass(frozen=True)
class Period:
    """``value`` from ``start`` (inclusive) to ``end`` (exclusive, None: open); ``id`` once stored."""

    start: Day
    end: Day | None
    value: Hashable = True
    id: uuid.UUID | None = None

    def covers(self, day: Day) -> bool:
        """True when ``day`` falls in the period."""
        return self.start <= day and (self.end is None or day < self.end)

    def overlaps(self, lo: Day, hi: Day | None) -> bool:
        """True when the period shares a day with ``[lo, hi)``."""
        return (hi is None or self.start < hi) and (self.end is None or lo < self.end)

    def same(self, other: Period) -> bool:
        """Equal span and value (ids aside)."""
        return (self.start, self.end, self.value) == (other.start, other.end, other.value)

    def wire(self) -> dict[str, str | None]:
        """``validFrom`` and ``validTo`` as ``YYYY-MM-DD`` (``validTo`` null when open)."""
        return {"validFrom": self.start.isoformat(), "validTo": None if self.end is None else self.end.isoformat()}


def same(a: Sequence[Period], b: Sequence[Period]) -> bool:
    """Two timelines of the same periods (ids aside)."""
    return len(a) == len(b) and all(p.same(q) for p, q in zip(a, b, strict=True))


def _end_key(end: Day | None) -> Day:
    return dt.date.max if end is None else end


def later(a: Day | None, b: Day | None) -> Day | None:
    """The later of two ends (None is open, so latest)."""
    return None if a is None or b is None else max(a, b)


def earlier(a: Day | None, b: Day | None) -> Day | None:
    """The earlier of two ends (None is open)."""
    if a is None:
        return b
    return a if b is None else min(a, b)


def at(periods: Iterable[Period], day: Day) -> Hashable | None:
    """The value in force on ``day``, or None."""
    return next((p.value for p in periods if p.covers(day)), None)


def normalised(periods: Iterable[Period]) -> list[Period]:
    """Sorted by start; periods of one value that overlap or touch are merged (the first one's id is kept)."""
    out: list[Period] = []
    for p in sorted(periods, key=lambda p: (p.start, _end_key(p.end))):
        last = out[-1] if out else None
        if last is not None and last.value == p.value and _end_key(last.end) >= p.start:
            out[-1] = replace(last, end=later(last.end, p.end))
        else:
            out.append(p)
    return out


def cleared(periods: Iterable[Period], lo: Day, hi: Day | None) -> list[Period]:
    """The timeline without the days ``[lo, hi)``: periods across an edge are cut, those inside removed."""
    out: list[Period] = []
    for p in periods:
        if not p.overlaps(lo, hi):
            out.append(p)
            continue
        if p.start < lo:
            out.append(replace(p, end=lo))
        if hi is not None and _end_key(p.end) > hi:
            out.append(replace(p, start=hi, id=None if p.start < lo else p.id))
    return out


def added(periods: Sequence[Period], start: Day, end: Day | None) -> list[Period]:
    """A membership with ``[start, end)`` added: overlapping or touching periods merge into one."""
    return normalised([*periods, Period(start, end)])


def ended(periods: Sequence[Period], day: Day) -> list[Period]:
    """A membership ended on ``day``: no period goes on from that date; a period that would become empty (it
    starts on or after ``day``) is removed."""
    return cleared(periods, day, None)


def next_change(periods: Iterable[Period], day: Day) -> Day | None:
    """The first date after ``day`` on which the recorded value changes (a period starts or ends)."""
    dates = [d for p in periods for d in (p.start, p.end) if d is not None and d > day]
    return min(dates, default=None)


def set_from(periods: Sequence[Period], day: Day, value: Hashable | None) -> tuple[list[Period], Day | None]:
    """The timeline where ``value`` holds from ``day`` until the next recorded change (None: no value then);
    returns it and that next change (None: open)."""
    until = next_change(periods, day)
    kept = cleared(periods, day, until)
    if value is not None:
        kept.append(Period(day, until, value))
    return normalised(kept), until


def field(periods: Iterable[Period], index: int) -> list[Period]:
    """One field's timeline out of a timeline of tuples (periods where it is None left out)."""
    return normalised(
        Period(p.start, p.end, p.value[index], p.id)  # type: ignore[index]
        for p in periods
        if p.value[index] is not None  # type: ignore[index]
    )


def combined(fields: Sequence[Sequence[Period]]) -> list[Period]:
    """A timeline of tuples, one element per field, cut where any field changes; days where every field is
    None are left out."""
    dates = sorted({d for f in fields for p in f for d in (p.start, p.end) if d is not None})
    open_ended = any(p.end is None for f in fields for p in f)
    out: list[Period] = []
    for i, start in enumerate(dates):
        end = dates[i + 1] if i + 1 < len(dates) else None
        if end is None and not open_ended:
            break
        value = tuple(at(f, start) for f in fields)
        if any(v is not None for v in value):
            out.append(Period(start, end, value))
    return normalised(out)


def with_ids(old: Sequence[Period], new: Sequence[Period]) -> list[Period]:
    """``new`` with the ids of ``old`` periods carried over: a period that keeps its value and overlaps a stored
    one is that stored period, changed (the one that starts on the same day first)."""
    free: dict[uuid.UUID | None, Period] = {p.id: p for p in old if p.id is not None}
    out: list[Period] = []
    for p in new:
        if p.id is not None and p.id in free:
            del free[p.id]
            out.append(p)
            continue
        candidates = [o for o in free.values() if o.value == p.value and o.overlaps(p.start, p.end)]
        candidates.sort(key=lambda o: (o.start != p.start, o.start))
        if candidates:
            del free[candidates[0].id]
            out.append(replace(p, id=candidates[0].id))
        else:
            out.append(replace(p, id=None))
    return out


def first_cycle(
    periods_of: Callable[[Hashable], Sequence[Period]], node: Hashable, start: Hashable, lo: Day, hi: Day | None
) -> Day | None:
    """The first day in ``[lo, hi)`` on which ``node``, given ``start`` as its value, would reach itself by
    following values (``periods_of(x)`` is x's timeline); None when it never does."""
    stack: list[tuple[Hashable, Day, Day | None, int]] = [(start, lo, hi, 0)]
    found: Day | None = None
    while stack:
        current, a, b, depth = stack.pop()
        if current == node:
            found = a if found is None else min(found, a)
            continue
        if depth > 100_000:  # the stored timelines are cycle-free, so a chain ends; this only bounds a bad one
            continue
        for p in periods_of(current):
            if p.value is not None and p.overlaps(a, b):
                stack.append((p.value, max(a, p.start), earlier(b, p.end), depth + 1))
    return found
