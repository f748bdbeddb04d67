"""Domain errors: data carrying what every door needs to answer them (status, code, the wait before a retry, the
credentials challenge, SCIM's ``scimType``), rendered by each door in its own format in one place
(docs/architecture.md, "Errors")."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Detail:
    """One precise problem inside an error: what, where (a field or JSON pointer)."""

    code: str
    message: str
    target: str | None = None


@dataclass
class DomainError(Exception):
    """Base of every expected failure; doors map ``status`` and ``code`` to their wire format."""

    message: str
    target: str | None = None
    details: list[Detail] = field(default_factory=list)
    code: str = "error"
    status: int = 400
    retry_after: int | None = None  # seconds to wait before retrying, sent as ``Retry-After`` by every door
    challenge: str | None = None  # the ``WWW-Authenticate`` value of a 401: the schemes the door takes
    # SCIM's error type (RFC 7644 §3.12), set where the error is raised: "uniqueness" for a taken name, not for
    # a cycle or the last admin.
    scim_type: str | None = None

    def __str__(self) -> str:
        return self.message


@dataclass
class BadRequest(DomainError):
    """The request itself could not be read (malformed JSON)."""

    code: str = "badRequest"
    status: int = 400
    scim_type: str | None = "invalidValue"


@dataclass
class Unauthorized(DomainError):
    """No usable credentials."""

    code: str = "unauthorized"
    status: int = 401


@dataclass
class Forbidden(DomainError):
    """Valid credentials without the right to act."""

    code: str = "forbidden"
    status: int = 403


@dataclass
class NotFound(DomainError):
    """Unknown id, or an id of another workspace: the two are indistinguishable by design."""

    code: str = "notFound"
    status: int = 404


@dataclass
class Gone(DomainError):
    """What was asked for is no longer kept (a change-feed cursor older than the pruned events)."""

    code: str = "gone"
    status: int = 410


@dataclass
class Conflict(DomainError):
    """A uniqueness, cycle or last-admin rule refuses the change."""

    code: str = "conflict"
    status: int = 409


@dataclass
class TooLarge(DomainError):
    """The body exceeds the request-size or row limits."""

    code: str = "payloadTooLarge"
    status: int = 413


@dataclass
class UnsupportedMediaType(DomainError):
    """The body is not JSON."""

    code: str = "unsupportedMediaType"
    status: int = 415


@dataclass
class Invalid(DomainError):
    """Validation failed; ``details`` lists every problem."""

    code: str = "validationError"
    status: int = 422
    scim_type: str | None = "invalidValue"


@dataclass
class InternalError(DomainError):
    """An unexpected exception, logged with its traceback; the answer names only the request id."""

    code: str = "internalError"
    status: int = 500

    @classmethod
    def of_request(cls, request_id: str) -> InternalError:
        """The answer to the request ``request_id`` whose handler failed."""
        return cls(f"internal error; request id {request_id}")


@dataclass
class Unavailable(DomainError):
    """The database does not answer, or a write did not get its turn (another process's long import)."""

    code: str = "serviceUnavailable"
    status: int = 503
    retry_after: int | None = 5

    @classmethod
    def outage(cls) -> Unavailable:
        """What every door answers when the driver cannot reach the database (its ``OperationalError``)."""
        return cls("the database is unavailable; retry later")


@dataclass
class BudgetSpent(DomainError):
    """A request's statements ran out of their time budget (``Budget``) and were stopped.

    A 503 without ``Retry-After``: the database is well, and the same query would spend the budget again."""

    code: str = "queryBudgetSpent"
    status: int = 503


@dataclass
class RateLimited(DomainError):
    """A key or workspace spent its request budget; ``retry_after`` is the wait in whole seconds."""

    code: str = "rateLimited"
    status: int = 429
    retry_after: int | None = 1
