"""Structured logs: one JSON object per line, on standard error, from the standard library's
logging (no second logging system to configure).

Each line has the time (UTC), the level, the logger, the message and, inside a request or a
background round, its `request_id` (the W3C trace id, hub.ops.trace) and `span_id`; fields a
caller passes with `extra=` are kept as fields. What goes in a message is the caller's
responsibility: never a citizen ID, a name, a secret or a token (tests/test_log_privacy.py
runs the whole API flow and looks for each value it sent in everything logged).
"""

from __future__ import annotations

import json
import logging
import logging.config
from datetime import UTC, datetime
from typing import Any

from hub.ops import trace

# What every LogRecord has; anything else on a record came from `extra=` and is a field.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's coloured copy of the message
}


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,  # which worker of several
        }
        active = trace.current()
        if active is not None:
            line["request_id"] = active.trace_id
            line["span_id"] = active.span_id
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_"):
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def logging_config(level: str = "INFO") -> dict[str, Any]:
    """The dictConfig of a hub process: JSON on standard error for the hub's loggers and
    uvicorn's (whose own access log stays off: the hub writes one line per request, with its
    route and request id, as `hub.access`)."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"stderr": handler},
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "uvicorn": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
            # Statements and their timing are for a developer's terminal, not the log: at
            # INFO SQLAlchemy would log every statement of every request.
            "sqlalchemy": {"level": "WARNING"},
            "apscheduler": {"level": "WARNING"},
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
        },
    }


def configure(level: str = "INFO") -> None:
    """Log as `logging_config` says (a command line's entry point calls this once)."""
    logging.config.dictConfig(logging_config(level))
