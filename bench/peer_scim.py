"""The reference SCIM server the benchmark compares against: scim2-server's ASGI application over its
in-memory storage, served by the same uvicorn as PayRoster (``uvicorn bench.peer_scim:app``).

With ``BENCH_PEER_SEED=FILE`` (userNames, one a line) the process holds those users before it answers: each is
read by the service's own creation reader and stored by the storage's ``create``, the two calls its ``POST /Users``
makes, without HTTP; their ids are written to ``FILE.ids`` in the same order. Seeding over HTTP took ~20 ms a user
on this machine under load (a single process), 100,000 users 35–40 minutes (bench/JOURNAL.md, 2026-12-06)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from scim2_models import (
    Bulk,
    ChangePassword,
    EnterpriseUser,
    ETag,
    Filter,
    Group,
    Patch,
    ResourceType,
    ScimProvider,
    ServiceProviderConfig,
    Sort,
    User,
)
from scim2_server.applications.asgi import ASGIApplication
from scim2_server.memory import AsyncInMemoryStorage

from bench.load import scim_user

provider = ScimProvider(
    models=[User, EnterpriseUser, Group],
    resource_types=[ResourceType.from_resource(User[EnterpriseUser]), ResourceType.from_resource(Group)],
    # The same capabilities PayRoster declares, so both serve the same requests.
    config=ServiceProviderConfig(
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=1000),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=True),
        etag=ETag(supported=True),
    ),
)
storage = AsyncInMemoryStorage()
app = ASGIApplication(storage, provider)


def seed(names: list[str]) -> list[str]:
    """Each name created as ``POST /Users`` creates it (``bench.load.scim_user``'s body); the new ids."""
    service = app.service
    users = next(rt for rt in service.provider.resource_types if rt.name == "User")
    ids: list[str] = []
    with service.provider:
        for name in names:
            resource = service.read_creation(users, json.dumps(scim_user(name)).encode(), "application/scim+json")
            with storage.storage.operation():
                ids.append(str(storage.storage.create(users, resource).id))
    return ids


if seed_file := os.environ.get("BENCH_PEER_SEED"):
    _path = Path(seed_file)
    _ids = seed(_path.read_text().split())
    Path(f"{seed_file}.ids").write_text("\n".join(_ids) + "\n")
