"""Log lines that name their request: text by default, one JSON object per line with
``PAYROSTER_LOG_FORMAT=json`` (docs/operations.md).

``config`` is one ``logging.config.dictConfig`` document for the CLI and for uvicorn, which applies it in each
worker it starts. The request id is added by a filter on the handler, so it reaches every line whatever
logger wrote it (ours, uvicorn's access and error lines, SQLAlchemy's); filters that other parts of PayRoster
put on their own loggers run before it, unchanged.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

from payroster.observability.requests import current

TEXT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record: the current request's, or ``-`` outside a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Always keeps the record."""
        if not hasattr(record, "request_id"):
            record.request_id = current() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id (and the traceback, if any).

    Written here rather than taken from a JSON-logging package: five fields through ``json.dumps``.
    """

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON (``request_id`` null outside a request)."""
        request_id = getattr(record, "request_id", None) or current() or "-"
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": None if request_id == "-" else request_id,
        }
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def config(fmt: str = "text", verbose: bool = False) -> dict[str, Any]:
    """The logging configuration: everything on stderr in one format, uvicorn's loggers included."""
    level = "DEBUG" if verbose else "INFO"
    formatter: dict[str, Any] = {"()": f"{__name__}.JsonFormatter"} if fmt == "json" else {"format": TEXT}
    uvicorn = {"handlers": ["stderr"], "level": "INFO", "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": f"{__name__}.RequestIdFilter"}},
        "formatters": {"payroster": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "payroster",
                "filters": ["request_id"],
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "uvicorn": uvicorn,
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": uvicorn,
            # Alembic narrates every migration check at INFO; only what changed is worth a line.
            "alembic": {"level": "DEBUG" if verbose else "WARNING"},
        },
    }
