"""The error pipeline every door shares: any exception a request raised becomes the domain error its door renders,
and the headers that travel with it (``Retry-After``, ``WWW-Authenticate``) are written here once.

A door renders the result in its own format, in one place of its own: the JSON API's ``api.errors.json_error``,
the feed's ``odata.routes.error``, SCIM's ``scim.routes.error``, the pages' ``web.core.error_page``
(docs/architecture.md, "Errors").
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import IntegrityError, OperationalError

from payroster.domain.errors import Conflict, DomainError, InternalError, Unavailable
from payroster.observability.requests import current as current_request_id
from payroster.observability.requests import fresh as fresh_request_id


def as_domain_error(exc: Exception, log: logging.Logger) -> DomainError:
    """``exc`` as the domain error a door answers, logged on ``log`` as the door's own line.

    - a domain error is itself;
    - a unique index refusing a write (a race the services could not foresee: the other request won) is a 409;
    - a database the driver cannot reach is a 503 with ``Retry-After``, one line in the log (an outage is not a
      bug to trace);
    - anything else is a 500 naming the request id, logged with its traceback, never sent to the client.
    """
    if isinstance(exc, DomainError):
        return exc
    if isinstance(exc, IntegrityError):
        log.info("integrity conflict: %s", exc.orig)
        return Conflict("the change conflicts with a concurrent change; retry", scim_type="uniqueness")
    if isinstance(exc, OperationalError):
        log.error("database unavailable: %s", exc.orig)
        return Unavailable.outage()
    request_id = current_request_id() or fresh_request_id()
    log.error("unhandled error, request id %s", request_id, exc_info=exc)
    return InternalError.of_request(request_id)


def headers(exc: DomainError) -> dict[str, str]:
    """The headers an error's answer carries in every door: the wait before a retry, the credentials challenge."""
    found: dict[str, str] = {}
    if exc.retry_after is not None:
        found["Retry-After"] = str(exc.retry_after)
    if exc.status == 401 and exc.challenge:
        found["WWW-Authenticate"] = exc.challenge
    return found
