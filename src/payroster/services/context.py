"""Who acts, for which workspace, through which door: passed to every service function."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    """The author of a change, recorded on its audit event."""

    workspace_id: uuid.UUID
    user_id: uuid.UUID | None
    kind: str  # user | apiKey | scimToken | cli | system
    channel: str  # api | ui | scim | cli | import
