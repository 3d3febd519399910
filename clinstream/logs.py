"""structlog set-up: JSON lines on stderr. Log message ids, types, stages and timings, never bodies."""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import structlog

_SECRET_QUERY = re.compile(r"((?:^|&)[^=&]*(?:password|passwd|secret|token)[^=&]*=)[^&]*", re.IGNORECASE)


def redact_url(url: str) -> str:
    """A service URL fit to print or log: the password (`redis://user:PASSWORD@host`) and secret-looking
    query parameters (`?password=...`) become `***`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:***@{host}" if colon else f"***@{host}"  # a lone user part may be a token: hidden too
    query = _SECRET_QUERY.sub(r"\1***", parts.query)
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    redacted = urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    # urlunsplit writes unix:///path as unix:/path
    return redacted.replace(":", "://", 1) if not netloc and url.startswith(f"{parts.scheme}://") else redacted


class RepeatedWarnings(logging.Filter):
    """A library's warning or error (same logger, same message template) at most once per `every_s`; the next
    one let through says how many were dropped meanwhile. While the broker is down aiokafka logs every failed
    reconnect and metadata refresh: about 9,000 lines from four stage processes in a 25 s outage."""

    def __init__(self, every_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.every_s, self.clock = every_s, clock
        self.last: dict[tuple[str, str], float] = {}
        self.dropped: dict[tuple[str, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, str(record.msg))
        now = self.clock()
        if now - self.last.get(key, -self.every_s) < self.every_s:
            self.dropped[key] = self.dropped.get(key, 0) + 1
            return False
        self.last[key] = now
        dropped = self.dropped.pop(key, 0)
        if dropped:
            record.msg = f"{record.msg} [and {dropped} more like it in the last {self.every_s:g} s]"
        return True


# the loggers aiokafka writes its per-attempt lines to (a filter on a logger sees only that logger's own records)
KAFKA_CLIENT_LOGGERS = ("aiokafka", "aiokafka.conn", "aiokafka.consumer.fetcher", "aiokafka.consumer.group_coordinator",
                        "aiokafka.producer.sender")


def configure(level: str = "info") -> None:
    numeric = logging.getLevelName(level.upper())
    logging.basicConfig(stream=sys.stderr, level=numeric if isinstance(numeric, int) else logging.INFO, format="%(message)s")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric if isinstance(numeric, int) else logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    repeated = RepeatedWarnings()
    for name in KAFKA_CLIENT_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RepeatedWarnings) for f in logger.filters):
            logger.addFilter(repeated)
