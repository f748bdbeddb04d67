"""Secrets kept out of the logs: the access log never shows an invitation or reset link's token, a skip token,
or a credential a client put in a query string (README.md, "Web app"; docs/operations.md, "What to monitor").

The access log is uvicorn's (``uvicorn.access``), written from the request line; a filter on that logger rewrites
each record's arguments before any handler or formatter sees them, whatever the log format.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"

# ``/invitations/<token>`` (invitation and password-reset links), also percent-encoded inside another URL.
_LINK_TOKEN = re.compile(r"(invitations(?:/|%2f))[^/?#&\s\"]+", re.IGNORECASE)
# Query parameters that carry a secret or a row's data: OData's ``$skiptoken`` (it holds the last row's sort
# keys), and the names clients use for tokens and keys (PayRoster reads keys only from headers, but a client that
# sends one in the URL must not have it written down).
_SECRET_PARAMETER = re.compile(
    r"([?&;](?:\$|%24)?(?:skiptoken|token|access_token|apikey|api_key|key|password|secret)=)[^&#\s\"]*",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """``text`` (a path, a URL, a request line) with its tokens replaced by ``[redacted]``."""
    if "=" not in text and "invitations" not in text.lower():
        return text  # most request lines: nothing to look for
    return _SECRET_PARAMETER.sub(r"\1" + REDACTED, _LINK_TOKEN.sub(r"\1" + REDACTED, text))


class RedactTokens(logging.Filter):
    """Rewrites a record's string arguments (uvicorn's access record: client, method, path, version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def install(logger_name: str = "uvicorn.access") -> None:
    """Add the filter to the access logger, once per process."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, RedactTokens) for f in logger.filters):
        logger.addFilter(RedactTokens())
