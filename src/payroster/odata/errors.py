"""The OData door's errors: each carries its HTTP status and a non-empty OData error code."""

from __future__ import annotations


class ODataError(Exception):
    """An error answered with the OData error body."""

    status = 400
    code = "BadRequest"

    def __init__(self, message: str, target: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.target = target


class ODataSyntaxError(ODataError):
    """Text that the OData ABNF does not allow (400)."""

    code = "InvalidSyntax"

    def __init__(self, message: str, position: int, target: str | None = None) -> None:
        super().__init__(message, target)
        self.position = position


class ODataUnsupported(ODataError):
    """Valid OData that PayRoster does not implement (501)."""

    status = 501
    code = "NotImplemented"


class ODataBadQuery(ODataError):
    """Well-formed but meaningless for this model: unknown property, wrong types (400)."""

    code = "InvalidQuery"


class ODataTooComplex(ODataError):
    """A query past one of the feed's limits (odata/limits.py), refused before any SQL (400)."""

    code = "QueryTooComplex"


class ODataNotFound(ODataError):
    """Unknown workspace, entity set or key (404)."""

    status = 404
    code = "NotFound"


class ODataMethodNotAllowed(ODataError):
    """The feed is read-only (405)."""

    status = 405
    code = "MethodNotAllowed"


class ODataNotAcceptable(ODataError):
    """The client accepts no format the feed produces (406)."""

    status = 406
    code = "NotAcceptable"


class ODataGone(ODataError):
    """A delta link older than the kept changes: the client reads everything again (410)."""

    status = 410
    code = "Gone"
