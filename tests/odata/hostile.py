"""The review's heavy feed queries and the data that makes them heavy, shared by the budget tests
(tests/odata/test_budget.py) and the hostile-client test (tests/reliability/test_hostile.py)."""

from __future__ import annotations

import uuid
from typing import Any

# Three nested any() over a user's tags (the limit, odata/limits.py) comparing concatenations: users x tags^3
# evaluations, minutes of database time for a few hundred users with tens of tags, and a count of it all.
HEAVY_FILTER = "tags/any(a: tags/any(b: tags/any(c: contains(concat(concat(a, b), c), 'no such text'))))"
HEAVY = {"$filter": HEAVY_FILTER, "$count": "true", "$top": "1"}


def heavy_rows(users: int, tags: int) -> list[dict[str, Any]]:
    """``users`` users with ``tags`` tags each, for ``users:bulk``."""
    return [
        {"emailAddress": f"heavy{i:05d}@example.com", "role": "Participant", "tags": [f"t{i}-{j}" for j in range(tags)]}
        for i in range(users)
    ]


def big_queries() -> list[dict[str, str]]:
    """The review's other expensive shapes: refused before any SQL now (400)."""
    guids = ",".join(str(uuid.UUID(int=i)) for i in range(1000))
    emails = ",".join(f"'u{i}@x.io'" for i in range(3000))  # 3,000 e-mails, within a URL's 64 KiB
    return [
        {"$filter": f"id in ({guids})"},
        {"$filter": f"emailAddress in ({emails})"},
        {"$orderby": ",".join(["lastName"] * 2000)},
        {"$filter": "not " * 500 + "active"},
        {"$filter": "(" * 2000 + "active" + ")" * 2000},
    ]
