"""Ending users' browser sessions: the one rule every door's deactivation shares.

A deactivated user's sessions end, they are not suspended: the rows are deleted in the deactivation's own
transaction, so reactivating the user later opens none of them again (README.md, "Web app")."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete
from sqlalchemy.orm import Session

from payroster.db.models import WebSession

CHUNK = 500  # ids per statement: an import may deactivate many users, and bound parameters are limited


def end_all(session: Session, workspace_id: uuid.UUID, user_ids: Sequence[uuid.UUID]) -> None:
    """Delete every browser session of these users of the workspace."""
    for start in range(0, len(user_ids), CHUNK):
        chunk = list(user_ids[start : start + CHUNK])
        session.execute(
            delete(WebSession).where(WebSession.workspace_id == workspace_id, WebSession.user_id.in_(chunk))
        )
