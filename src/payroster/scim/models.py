"""The SCIM resources PayRoster publishes, as scim2-models models (README.md, "SCIM provisioning").

Only attributes PayRoster stores are declared, so ``/Schemas`` advertises nothing that would not round-trip:
the core User is reduced to userName, name (given and family), displayName, active, password (write-only,
never stored nor returned), emails and groups (read-only); core ``roles`` is deliberately absent. Our
extension carries role, tags and aliases; the enterprise extension carries only the manager.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field
from scim2_models import (
    URN,
    AnyExtension,
    AuthenticationScheme,
    Bulk,
    CaseExact,
    ChangePassword,
    ComplexAttribute,
    ETag,
    Extension,
    Filter,
    GroupMembership,
    Mutability,
    Patch,
    Reference,
    Required,
    Resource,
    ResourceType,
    Returned,
    ScimPolicy,
    ScimProvider,
    ServiceProviderConfig,
    Sort,
    Uniqueness,
)
from scim2_models import ExtensibleStringEnum as _Enum

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PAYROSTER_SCHEMA = "urn:ietf:params:scim:schemas:extension:payroster:2.0:User"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
MAX_RESULTS = 1000


class Name(ComplexAttribute):
    """The parts of a name PayRoster keeps."""

    given_name: str | None = None
    """First name."""

    family_name: str | None = None
    """Last name."""


class Email(ComplexAttribute):
    """An e-mail address; the primary (or first) one is the user's e-mail when userName is not one."""

    value: Annotated[str | None, Required.true] = None
    """The address."""

    type: str | None = None
    """work, home, other."""

    primary: bool | None = None
    """Whether this is the preferred address."""


class User(Resource[AnyExtension]):
    """A PayRoster user seen through SCIM."""

    __schema__ = URN(USER_SCHEMA)

    user_name: Annotated[str | None, Uniqueness.server, Required.true] = None
    """Unique per workspace, compared case-insensitively."""

    name: Name | None = None
    """First and last name."""

    display_name: str | None = None
    """Stored as the identity provider sends it."""

    active: Annotated[bool | None, Required.true] = None
    """False while the user is deactivated (always present; true when a request leaves it out)."""

    password: Annotated[str | None, Mutability.write_only, Returned.never, CaseExact.true] = None
    """Accepted from identity providers that always send one; never stored, never returned."""

    emails: Annotated[list[Email] | None, Required.true] = None
    """E-mail addresses, as last written (the user's e-mail always among them). Required as identity
    providers always send it; a request whose userName is an address may leave it out."""

    groups: Annotated[list[GroupMembership] | None, Mutability.read_only] = None
    """The user's teams; changed through Group members."""


class Role(_Enum):
    """The roles a user can hold (deactivation is ``active``)."""

    FullAdmin = "FullAdmin"
    LimitedAdmin = "LimitedAdmin"
    Participant = "Participant"


class PayRosterUser(Extension):
    """PayRoster's own attributes of a user."""

    __schema__ = URN(PAYROSTER_SCHEMA)

    role: Annotated[Role | None, CaseExact.true, Required.true] = None
    """FullAdmin, LimitedAdmin or Participant (kept while deactivated). Always present: a request that
    leaves it out gets the workspace's default SCIM role on creation and keeps the stored one otherwise."""

    tags: list[str] | None = None
    """Plan targets."""

    aliases: list[str] | None = None
    """Names that credit transactions to the user; unique per workspace."""


class Manager(ComplexAttribute):
    """The user's direct manager."""

    value: Annotated[str | None, CaseExact.true] = None
    """The manager's id."""

    ref: Annotated[Reference[User] | None, Mutability.read_write] = Field(  # type: ignore[type-arg]
        None, serialization_alias="$ref", validation_alias="$ref"
    )
    """The manager's URI; when given without ``value``, the id is read from it."""


class EnterpriseUser(Extension):
    """The enterprise extension, reduced to what PayRoster stores: the manager."""

    __schema__ = URN(ENTERPRISE_SCHEMA)

    manager: Manager | None = None
    """The direct manager (directManagerId)."""


class GroupMember(ComplexAttribute):
    """A member of a team: a user, by id."""

    value: Annotated[str | None, Mutability.immutable, CaseExact.true] = None
    """The user's id."""

    ref: Annotated[Reference[User] | None, Mutability.immutable] = Field(  # type: ignore[type-arg]
        None, serialization_alias="$ref", validation_alias="$ref"
    )
    """The user's URI."""

    type: Annotated[str | None, Mutability.immutable] = Field(None, examples=["User"])
    """Always User: teams do not nest through membership."""


class Group(Resource[Any]):
    """A team seen through SCIM; members are its memberships."""

    __schema__ = URN(GROUP_SCHEMA)

    display_name: Annotated[str | None, Required.true, Uniqueness.server] = None
    """The team name, unique per workspace."""

    members: list[GroupMember] | None = None
    """The team's users."""


UserModel = User[PayRosterUser | EnterpriseUser]


def _user_type() -> ResourceType:
    """Users carry our extension always (it holds the role); the enterprise one only with a manager."""
    described = ResourceType.from_resource(UserModel)
    for extension in described.schema_extensions or []:
        extension.required = str(extension.schema_) == PAYROSTER_SCHEMA
    return described


CONFIG = ServiceProviderConfig(
    documentation_uri=None,
    patch=Patch(supported=True),
    bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
    filter=Filter(supported=True, max_results=MAX_RESULTS),
    change_password=ChangePassword(supported=False),
    sort=Sort(supported=True),
    etag=ETag(supported=True),
    authentication_schemes=[
        AuthenticationScheme(
            type="oauthbearertoken",
            name="Provisioning token",
            description="Authorization: Bearer with a provisioning token or a full admin's API key",
            primary=True,
        )
    ],
)

# Identity providers deviate from the RFC in known ways (README.md, "SCIM provisioning"): Entra removes members by
# value, and sends attributes we do not store (employeeNumber...), which are ignored rather than refused.
POLICY = ScimPolicy(
    unknown=ScimPolicy.Unknown.ignore,
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
)

PROVIDER = ScimProvider(
    models=[User, PayRosterUser, EnterpriseUser, Group],
    resource_types=[_user_type(), ResourceType.from_resource(Group)],
    config=CONFIG,
    policy=POLICY,
)
