"""The reference SCIM server the benchmark compares against: scim2-server's ASGI application over its
in-memory storage, served by the same uvicorn as PayRoster (``uvicorn bench.peer_scim:app``)."""

from __future__ import annotations

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
app = ASGIApplication(AsyncInMemoryStorage(), provider)
