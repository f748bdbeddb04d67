"""Wire schemas: they document the JSON API in OpenAPI; parsing itself lives in services.inputs."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

Role = Literal["FullAdmin", "LimitedAdmin", "Participant", "Deactivated"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserUpsert(_Strict):
    """Create or update a user by e-mail (field names match case-insensitively)."""

    emailAddress: str = Field(max_length=254, examples=["test@example.com"])
    role: Role | SkipJsonSchema[None] = Field(
        default=None, description="required to create; Deactivated turns the user off"
    )
    firstName: str | None = Field(default=None, max_length=255)
    lastName: str | None = Field(default=None, max_length=255)
    directManagerId: uuid.UUID | None = None
    tags: str | list[str] | None = Field(default=None, description="'A|B' or an array; added to existing ones")
    aliases: str | list[str] | None = Field(default=None, description="'A|B' or an array; added to existing ones")
    effectiveDate: dt.date | None = Field(
        default=None, description="the manager/parent change holds from this date (default today)"
    )


class UserPatch(_Strict):
    """Change any field of a user; here tags and aliases replace."""

    emailAddress: str | SkipJsonSchema[None] = Field(default=None, max_length=254)
    role: Role | SkipJsonSchema[None] = None
    firstName: str | None = Field(default=None, max_length=255)
    lastName: str | None = Field(default=None, max_length=255)
    directManagerId: uuid.UUID | None = None
    tags: str | list[str] | None = None
    aliases: str | list[str] | None = None
    effectiveDate: dt.date | None = Field(
        default=None, description="the manager/parent change holds from this date (default today)"
    )


class UserOut(BaseModel):
    """A user as the API returns it."""

    id: uuid.UUID
    emailAddress: str
    role: Role
    active: bool
    firstName: str | None
    lastName: str | None
    directManagerId: uuid.UUID | None
    tags: list[str]
    aliases: list[str]
    createdAt: dt.datetime
    updatedAt: dt.datetime


class BulkUserRef(BaseModel):
    """One row's user in a bulk answer."""

    id: uuid.UUID
    emailAddress: str
    created: bool


class BulkOut(BaseModel):
    """What ``users:bulk`` applied."""

    created: int
    updated: int
    unchanged: int
    users: list[BulkUserRef]


class ImportCounts(BaseModel):
    """What one sheet's rows did (or, in a dry run, would do)."""

    rows: int
    created: int
    updated: int
    unchanged: int


class ImportOut(BaseModel):
    """An import's counts by sheet (``Users``, ``Teams``, ``Memberships``, ``CustomVariables``)."""

    dryRun: bool
    sheets: dict[str, ImportCounts]


class BulkIn(_Strict):
    """``users:bulk`` also takes the bare array."""

    users: list[UserUpsert]


class TeamUpsert(_Strict):
    """Create or update a team by name."""

    name: str = Field(min_length=1, max_length=255, examples=["West"])
    description: str | None = None
    managerId: uuid.UUID | None = None
    parentTeamId: uuid.UUID | None = None
    managerCanViewResults: bool | None = None
    managerCanViewCredits: bool | None = None
    membersCanViewCredits: bool | None = None
    effectiveDate: dt.date | None = Field(
        default=None, description="the manager/parent change holds from this date (default today)"
    )


class TeamPatch(_Strict):
    """Change a team by id (rename included)."""

    name: str | SkipJsonSchema[None] = Field(default=None, min_length=1, max_length=255)
    description: str | None = None
    managerId: uuid.UUID | None = None
    parentTeamId: uuid.UUID | None = None
    managerCanViewResults: bool | None = None
    managerCanViewCredits: bool | None = None
    membersCanViewCredits: bool | None = None
    effectiveDate: dt.date | None = Field(
        default=None, description="the manager/parent change holds from this date (default today)"
    )


class TeamOut(BaseModel):
    """A team as the API returns it."""

    id: uuid.UUID
    name: str
    description: str | None
    managerId: uuid.UUID | None
    parentTeamId: uuid.UUID | None
    managerCanViewResults: bool
    managerCanViewCredits: bool
    membersCanViewCredits: bool
    createdAt: dt.datetime
    updatedAt: dt.datetime


class MemberIn(_Strict):
    """A team membership: the pair (systemUserId, teamId), from ``validFrom`` (default today) to ``validTo``
    (exclusive; default open)."""

    systemUserId: uuid.UUID
    teamId: uuid.UUID
    validFrom: dt.date | None = None
    validTo: dt.date | None = None


class MemberEnd(_Strict):
    """The end of a membership: the pair, ended on ``validTo`` (default today)."""

    systemUserId: uuid.UUID
    teamId: uuid.UUID
    validTo: dt.date | None = None


class MemberCreated(BaseModel):
    """Answer of an add: ``created`` is false when a period covering ``validFrom`` existed; the period is the
    one covering ``validFrom`` afterwards."""

    systemUserId: uuid.UUID
    teamId: uuid.UUID
    created: bool
    periodId: uuid.UUID
    validFrom: dt.date
    validTo: dt.date | None


class PeriodErased(BaseModel):
    """The membership period an erasure removed."""

    periodId: uuid.UUID
    systemUserId: uuid.UUID
    teamId: uuid.UUID
    validFrom: dt.date
    validTo: dt.date | None
    deleted: bool


class MemberPeriod(BaseModel):
    """One period of a member of a team."""

    periodId: uuid.UUID
    systemUserId: uuid.UUID
    validFrom: dt.date
    validTo: dt.date | None


class TeamMembersAsOf(BaseModel):
    """The members of a team on a date."""

    teamId: uuid.UUID
    asOf: dt.date
    members: list[MemberPeriod]
    next: uuid.UUID | None = None


class ManagerPeriodOut(BaseModel):
    """One period of a user's direct manager."""

    periodId: uuid.UUID
    validFrom: dt.date
    validTo: dt.date | None
    directManagerId: uuid.UUID


class TeamPeriodOut(BaseModel):
    """One period of a user on a team."""

    periodId: uuid.UUID
    teamId: uuid.UUID
    validFrom: dt.date
    validTo: dt.date | None


class UserTimeline(BaseModel):
    """A user's dated history: direct managers and teams, oldest first."""

    userId: uuid.UUID
    directManager: list[ManagerPeriodOut]
    teams: list[TeamPeriodOut]


class TeamManagerPeriod(BaseModel):
    """A team's manager over a period."""

    validFrom: dt.date
    validTo: dt.date | None
    managerId: uuid.UUID


class TeamParentPeriod(BaseModel):
    """A team's parent over a period."""

    validFrom: dt.date
    validTo: dt.date | None
    parentTeamId: uuid.UUID


class TeamTimeline(BaseModel):
    """A team's dated history, a page of member periods at a time: its manager and parent periods, oldest first,
    whole on every page; its member periods by user, then date (period id breaking ties)."""

    teamId: uuid.UUID
    manager: list[TeamManagerPeriod]
    parent: list[TeamParentPeriod]
    members: list[MemberPeriod] = Field(description="this page's member periods, `limit` at most")
    next: str | None = Field(
        default=None, description="the `after` of the next page (an opaque string), null on the last page"
    )


class MemberDeleted(BaseModel):
    """Answer of a remove: ``deleted`` is false when there was nothing to remove."""

    systemUserId: uuid.UUID
    teamId: uuid.UUID
    deleted: bool


class VariableEntry(_Strict):
    """One effective-dated custom variable entry."""

    name: str = Field(min_length=1, max_length=255)
    value: Decimal | str | bool | None
    startDate: str | None = Field(default=None, examples=["2020-01-01T00:00:00"])
    endDate: str | None = Field(default=None, description="exclusive")


class Me(BaseModel):
    """Who the key belongs to and where its doors are."""

    userId: uuid.UUID
    emailAddress: str
    role: Role
    workspaceId: uuid.UUID
    workspaceSlug: str
    odataServiceRoot: str
    scimBaseUrl: str
    keyId: str


class ErrorDetail(BaseModel):
    """One problem."""

    code: str
    message: str
    target: str | None = None


class ErrorInner(BaseModel):
    """The error itself."""

    code: str
    message: str
    target: str | None = None
    details: list[ErrorDetail] = []
    requestId: str | None = Field(default=None, description="the request's X-Request-ID, as the logs name it")


class ErrorBody(BaseModel):
    """Every error answer of the JSON API."""

    error: ErrorInner


class Health(BaseModel):
    """Health check answer."""

    status: str
    database: str


class WebhookIn(_Strict):
    """A webhook endpoint to create (README.md, "Webhooks")."""

    url: str = Field(max_length=2048, description="https (http only to hosts in PAYROSTER_WEBHOOK_ALLOW_HOSTS)")
    description: str | None = Field(default=None, max_length=1024)
    eventTypes: list[str] | None = Field(default=None, description="`*` (default), `user.*`, `membership.added`...")
    enabled: bool | None = None


class WebhookPatch(_Strict):
    """Fields of a webhook endpoint to change; enabling one again resumes where it stopped."""

    url: str | None = Field(default=None, max_length=2048)
    description: str | None = Field(default=None, max_length=1024)
    eventTypes: list[str] | None = None
    enabled: bool | None = None


class WebhookSequence(_Strict):
    """A change of the feed, by its sequence number."""

    sequence: int = Field(ge=1)


class WebhookOut(BaseModel):
    """A webhook endpoint (its secret is shown only when created or rotated)."""

    id: str
    url: str
    description: str
    eventTypes: list[str]
    enabled: bool
    disabledReason: str | None = None
    position: int = Field(description="the last change sequence delivered (or filtered out)")
    failures: int
    failingSince: str | None = None
    nextAttemptAt: str | None = None
    previousSecretUntil: str | None = None
    createdAt: str
    updatedAt: str
    secret: str | None = Field(default=None, description="whsec_...: only in the answer that made it")


class WebhookList(BaseModel):
    """The workspace's webhook endpoints."""

    webhooks: list[WebhookOut]


class WebhookAttemptOut(BaseModel):
    """One delivery attempt."""

    id: str
    messageId: str
    sequence: int | None
    eventType: str
    attemptedAt: str
    status: int | None
    error: str | None
    durationMs: int
    response: str = Field(description="the first 1 KiB of the answer")


class WebhookAttempts(BaseModel):
    """An endpoint's last 100 attempts, newest first."""

    attempts: list[WebhookAttemptOut]


class WebhookQueued(BaseModel):
    """A message queued for sending: its ``webhook-id``."""

    messageId: str


REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    UserUpsert,
    UserPatch,
    BulkIn,
    TeamUpsert,
    TeamPatch,
    MemberIn,
    MemberEnd,
    VariableEntry,
    WebhookIn,
    WebhookPatch,
    WebhookSequence,
)

# A request body of each schema, shown in the OpenAPI document beside its operations (README.md's examples).
REQUEST_EXAMPLES: dict[str, object] = {
    "UserUpsert": {
        "emailAddress": "test@example.com",
        "role": "FullAdmin",
        "firstName": "Bob",
        "lastName": "Smith",
        "tags": "AE|SouthEast",
        "aliases": "ID-123",
    },
    "UserPatch": {"lastName": "Smith-Jones", "tags": ["AE", "West"]},
    "TeamUpsert": {"name": "West", "description": "Western region", "managerCanViewResults": True},
    "TeamPatch": {"name": "West Coast"},
    "MemberIn": {
        "systemUserId": "0192f5e0-7b1c-7cc1-9a51-3f1d2b0c4e5a",
        "teamId": "0192f5e0-9d2e-7a40-8f3b-6c5d4e3f2a1b",
    },
    "MemberEnd": {
        "systemUserId": "0192f5e0-7b1c-7cc1-9a51-3f1d2b0c4e5a",
        "teamId": "0192f5e0-9d2e-7a40-8f3b-6c5d4e3f2a1b",
        "validTo": "2026-03-01",
    },
    "VariableEntry": {"name": "Quota", "value": 125000, "startDate": "2026-01-01T00:00:00", "endDate": None},
    "WebhookIn": {"url": "https://hooks.example.com/payroster", "description": "payroll", "eventTypes": ["user.*"]},
    "WebhookPatch": {"enabled": False},
    "WebhookSequence": {"sequence": 42},
}
